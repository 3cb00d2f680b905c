"""The `rvq` codec backend: evalkit's own RVQ autoencoder (model.py) behind the codec contract.

Bitstream: one packet per `frames_per_packet` frames of 20 ms (hop 320 at 16 kHz), each
frame n_q codebook indices of log2(codebook_size) = 10 bits; by default the fewest frames
whose bits fill whole bytes (n_q = 3: 4 frames, n_q = 6: 2, n_q = 12: 1), so the bitrate is
exactly n_q x 500 bit/s and nothing is padded. The header carries n_q, the frames per packet
and the first 16 hex digits of the weights' sha256; a decoder configured differently refuses
the stream.

Latency: causal encoder and decoder, so the output is aligned with the input (lookahead 0)
and the algorithmic latency is one packet; an iSTFT decoder ("istft", vocos.py) lags it by its
window's look-back, declared as the lookahead. Decoding runs in chunks of frames with carried
state (identical to a whole-signal decode), as a streaming receiver would.
Concealment: "repeat" (packets.py).

`waveform_matching: false` in a card declares that the weights reproduce spectra but not the
waveform's phase (a decoder trained with spectral losses, not long enough to lock phase): the
harness then checks the declared delay on envelopes and skips waveform resemblance.

torch is imported only when a codec is built; without it the backend reports itself
unavailable with the install command.
"""

from __future__ import annotations

import importlib.util
import math
import zipfile
from functools import cache, lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..codecs.base import Codec, CodecInfo
from ..errors import ConfigError
from .bitpack import code_bits, frames_per_whole_bytes
from .packets import check_header, codes_to_packets, packets_to_codes, silence_mask
from .weights import pinned_path, stored_json

__all__ = ["RVQCodec", "TORCH_HINT", "torch_missing"]

TORCH_HINT = "pip install torch==2.13.0"
DECODE_CHUNK_FRAMES = 50  # one second of frames per streaming decode call


def torch_missing() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return f"torch is not installed: {TORCH_HINT}"
    return None


@lru_cache(maxsize=8)
def _load_model(path: Path, sha256: str):
    from .model import load_inference

    return load_inference(path)


@lru_cache(maxsize=8)
def _model_config(path: Path, sha256: str):
    """What the codec needs of the model's config (rate, hop, codebooks, lookahead), without torch when it can.

    A save_inference checkpoint keeps its config as a JSON string in the archive's pickle; its
    opcodes are read, never executed. Any other layout loads the model.
    """
    try:
        data = stored_json(path, ("config",))["config"]
        hop = math.prod(data["strides"])
        lookahead = int(data["n_fft"]) - hop // int(data["decoder_upsample"]) if data.get("decoder") == "istft" else 0
        return SimpleNamespace(
            sample_rate=int(data["sample_rate"]),
            hop=hop,
            codebook_size=int(data["codebook_size"]),
            n_q=int(data["n_q"]),
            lookahead=lookahead,
        )  # as RVQConfig.lookahead
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return _load_model(path, sha256).config


@cache
def _torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


class RVQCodec(Codec):
    """RVQ autoencoder at n_q codebooks (n_q x 500 bit/s at 16 kHz, 50 frames/s)."""

    install_hint = TORCH_HINT
    concealment = "repeat"
    local_params = ("weights",)  # a path on this machine; the sha256 travels in the stream

    def __init__(
        self, weights: str, sha256: str, n_q: int, frames_per_packet: int | None = None, waveform_matching: bool = True
    ):
        path = pinned_path(weights, sha256, "rvq")
        self.waveform_matching = bool(waveform_matching)
        self.path, self.sha256 = path, sha256.lower()
        config = _model_config(path, self.sha256)  # the model itself loads on first use (torch)
        if not isinstance(n_q, int) or not 1 <= n_q <= config.n_q:
            raise ConfigError(f"rvq: n_q must be an integer from 1 to {config.n_q}, got {n_q!r}")
        self.n_q, self.bits, self.hop, self.sample_rate = (
            n_q,
            code_bits(config.codebook_size),
            config.hop,
            config.sample_rate,
        )
        self.lookahead = config.lookahead
        self.frames_per_packet = frames_per_packet or frames_per_whole_bytes(n_q * self.bits)
        if (self.frames_per_packet * n_q * self.bits) % 8:
            raise ConfigError(f"rvq: {self.frames_per_packet} frames of {n_q * self.bits} bits do not fill whole bytes")

    @classmethod
    def unavailable(cls) -> str | None:
        return torch_missing()

    @property
    def model(self):
        return _load_model(self.path, self.sha256)

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=f"evalkit-rvq weights {self.sha256[:12]}, torch {_torch_version()}",
            family="neural-rvq",
            sample_rate=self.sample_rate,
            frame_samples=self.hop * self.frames_per_packet,
            lookahead_samples=self.lookahead,
            nominal_bitrate=self.n_q * self.bits * self.sample_rate / self.hop,
            waveform_matching=self.waveform_matching,
            needs=("torch", "weights"),
        )

    def _header(self) -> dict:
        return {"n_q": self.n_q, "fpp": self.frames_per_packet, "weights": self.sha256[:16]}

    def _encode(self, samples):
        import torch

        codes = self.model.encode(torch.from_numpy(np.ascontiguousarray(samples[None])), self.n_q)[0].numpy()
        return self._header(), codes_to_packets(codes, self.bits, self.frames_per_packet)

    def _decode(self, header, packets):
        import torch

        check_header(header, self._header(), "rvq")
        codes, leading = packets_to_codes(packets, self.n_q, self.bits, self.frames_per_packet)
        codes = torch.from_numpy(codes)[None]
        chunks, state = [], None
        for start in range(0, codes.shape[-1], DECODE_CHUNK_FRAMES):
            chunk, state = self.model.decode_stream(codes[..., start : start + DECODE_CHUNK_FRAMES], state)
            chunks.append(chunk)
        out = torch.cat(chunks, dim=-1)[0, 0].numpy()
        return out * silence_mask(len(out), leading, self.hop)

    def torch_modules(self) -> dict:
        """Encoder and decoder as torch modules for MAC counting (evalkit.profile protocol)."""
        import torch

        from .model import DecoderPart, EncoderPart

        frames = self.sample_rate // self.hop
        codes = torch.zeros(1, self.n_q, frames, dtype=torch.long)
        return {
            "encoder": (EncoderPart(self.model, self.n_q), torch.zeros(1, 1, frames * self.hop), 1.0),
            "decoder": (DecoderPart(self.model), codes, 1.0),
        }
