"""The `ladiff` codec backend: LaDiffCodec, de-quantisation of RVQ codes by latent diffusion.

Encoder and bitstream are the RVQ codec's (codec.py): its codes at n_q codebooks, packed as the
`rvq` backend packs them, are the whole payload; the header adds a seed. The decoder turns the
codes into the RVQ quantised latents, upsamples them to the condition, runs the diffusion sampler
(`steps` network evaluations, DDIM or DDPM, from noise or midway from the condition at
`midway_t`, blending `lam`, predicted clean latents clamped to +-`clip` when > 0) in the continuous
autoencoder's latent space and decodes the latents
with the autoencoder's causal decoder. Every random draw comes from the header's seed, so a
stream decodes to the same samples every time.

Latency: the U-Net sees the whole utterance (`chunk_frames: 0`, `streaming: false`), or blocks of
`chunk_frames` code frames with `context_frames` of codes on either side (a block's output depends
on codes up to its right context only: latency = block + right context). Concealment: lost packets
repeat the last codes received, as `rvq`.
"""

from __future__ import annotations

import math
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..codecs.base import CodecInfo
from ..errors import CodecError, ConfigError
from .codec import RVQCodec, _torch_version
from .packets import check_header, packets_to_codes, silence_mask
from .weights import pinned_path, stored_json

__all__ = ["LaDiffCodec", "SAMPLERS"]

SAMPLERS = {"ddim": 0.0, "ddpm": 1.0}  # eta of the generalised DDIM step
_MAX_SEED = 2**32 - 1


@lru_cache(maxsize=4)
def _load(path: Path, sha256: str):
    from .ladiff import load_ladiff

    return load_ladiff(path)


@lru_cache(maxsize=4)
def _fingerprint(model) -> str:
    from .ladiff import codes_fingerprint

    return codes_fingerprint(model)


@lru_cache(maxsize=4)
def _shape(path: Path, sha256: str) -> tuple[int, int, int]:
    """(autoencoder hop, latent frames per code frame, most codebooks) of a weights file, without torch
    when it can (weights.stored_json)."""
    try:
        stored = stored_json(path, ("config", "ae_config"))
        config, ae = stored["config"], stored["ae_config"]
        return math.prod(ae["strides"]), 2 ** int(config["upsample_factors"]), int(config["max_n_q"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        diffusion, _, ae_config, _ = _load(path, sha256)
        return ae_config.hop, diffusion.rate_ratio, diffusion.config.max_n_q


class LaDiffCodec(RVQCodec):
    """RVQ codes (n_q x 500 bit/s) decoded by latent diffusion."""

    # the seed travels in the header on its own: a stream decodes with its own seed under any card seed
    local_params = ("rvq_weights", "weights", "seed")

    def __init__(
        self,
        rvq_weights: str,
        rvq_sha256: str,
        weights: str,
        sha256: str,
        n_q: int,
        steps: int = 25,
        sampler: str = "ddim",
        midway_t: int | None = None,
        lam: float = 0.0,
        clip: float = 0.0,
        seed: int = 0,
        chunk_frames: int = 0,
        context_frames: int = 0,
        frames_per_packet: int | None = None,
    ):
        super().__init__(rvq_weights, rvq_sha256, n_q, frames_per_packet, waveform_matching=False)
        self.ladiff_path, self.ladiff_sha256 = pinned_path(weights, sha256, "ladiff"), sha256.lower()
        self.rvq_weights, self.ladiff_weights = rvq_weights, weights
        ae_hop, ratio, max_n_q = _shape(self.ladiff_path, self.ladiff_sha256)
        if ae_hop * ratio != self.hop or n_q > max_n_q:
            raise ConfigError(f"ladiff: {weights} does not fit the rvq model (hop or codebook count)")
        self._check_sampling(steps, sampler, midway_t, lam, clip, seed, chunk_frames, context_frames)
        self.steps, self.eta, self.midway_t, self.lam, self.seed = (
            int(steps),
            SAMPLERS[sampler],
            midway_t,
            float(lam),
            int(seed),
        )
        self.clip = float(clip)
        self.chunk_frames, self.context_frames = int(chunk_frames), int(context_frames)

    def _models(self):
        """(diffusion model, autoencoder decoder), loaded on first use (torch), checked against the rvq codes."""
        diffusion, ae_decoder, _, trained_on = _load(self.ladiff_path, self.ladiff_sha256)
        if trained_on != _fingerprint(self.model):
            raise ConfigError(
                f"ladiff: {self.ladiff_weights} was trained on the codes of another rvq model than {self.rvq_weights}"
            )
        return diffusion, ae_decoder

    @property
    def diffusion(self):
        return self._models()[0]

    @property
    def ae_decoder(self):
        return self._models()[1]

    @staticmethod
    def _check_sampling(steps, sampler, midway_t, lam, clip, seed, chunk_frames, context_frames) -> None:
        checks = [
            (isinstance(steps, int) and 0 <= steps <= 1000, f"steps must be an integer 0..1000, got {steps!r}"),
            (sampler in SAMPLERS, f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}"),
            (
                midway_t is None or (isinstance(midway_t, int) and 0 <= midway_t <= 1000),
                f"midway_t must be null or 0..1000, got {midway_t!r}",
            ),
            (isinstance(lam, (int, float)) and 0.0 <= lam <= 1.0, f"lam must be in [0, 1], got {lam!r}"),
            (isinstance(clip, (int, float)) and clip >= 0, f"clip must be a number >= 0 (0: off), got {clip!r}"),
            (isinstance(seed, int) and 0 <= seed <= _MAX_SEED, f"seed must be an integer 0..2**32-1, got {seed!r}"),
            (
                isinstance(chunk_frames, int)
                and chunk_frames >= 0
                and isinstance(context_frames, int)
                and context_frames >= 0,
                "chunk_frames and context_frames must be integers >= 0",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"ladiff: {message}")

    @property
    def info(self) -> CodecInfo:
        base = super().info
        return CodecInfo(
            name=self.backend,
            # the store keeps 64 characters of a codec version: both weights' hash prefixes and torch's must fit
            version=f"evalkit-ladiff {self.ladiff_sha256[:12]}/rvq {self.sha256[:12]}, torch {_torch_version()}",
            family="neural-ladiff",
            sample_rate=base.sample_rate,
            frame_samples=base.frame_samples,
            lookahead_samples=0,
            nominal_bitrate=base.nominal_bitrate,
            waveform_matching=False,
            streaming=False,
            needs=("torch", "weights"),
        )

    @property
    def decode_latency_samples(self) -> int | None:
        """Samples of codes a block's output waits for beyond its own start: None for whole-utterance decoding."""
        return (self.chunk_frames + self.context_frames) * self.hop if self.chunk_frames else None

    def _header(self) -> dict:
        return {**super()._header(), "ladiff": self.ladiff_sha256[:16], "seed": self.seed}

    def _decode(self, header, packets):
        check_header(header, {k: v for k, v in self._header().items() if k != "seed"}, "ladiff")
        seed = header.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _MAX_SEED:
            raise CodecError(f"ladiff: header seed must be an integer 0..2**32-1, got {seed!r}")
        frames = header.get("frames")
        if isinstance(frames, int) and frames > len(packets) * self.frames_per_packet * self.hop:
            raise CodecError(f"ladiff: header declares {frames} samples but {len(packets)} packets hold fewer")
        codes, leading = packets_to_codes(packets, self.n_q, self.bits, self.frames_per_packet)
        out = np.concatenate(list(self.decode_blocks(codes, seed)))
        return out * silence_mask(len(out), leading, self.hop)

    def decode_blocks(self, codes: np.ndarray, seed: int):
        """Waveform blocks of codes (n_q, frames): one block for whole-utterance decoding, else one per
        `chunk_frames`, each from its codes plus `context_frames` each side (all a receiver needs)."""
        import torch

        frames = codes.shape[1]
        size = self.chunk_frames or frames
        state = None
        for index, start in enumerate(range(0, frames, size)):
            lo, hi = max(0, start - self.context_frames), min(frames, start + size + self.context_frames)
            latents = self._latents(codes[:, lo:hi], seed, index)
            ratio = self.diffusion.rate_ratio
            block = latents[..., (start - lo) * ratio : (min(start + size, frames) - lo) * ratio]
            with torch.no_grad():
                audio, state = self.ae_decoder.stream(block, state)
            yield audio[0, 0].numpy()

    def _latents(self, codes: np.ndarray, seed: int, index: int):
        """Generated autoencoder latents (1, dim, frames x ratio) of a span of codes."""
        import torch

        # the U-Net halves the length `levels - 1` times: pad the codes to whole multiples (cut off later)
        pad = -codes.shape[1] % max(1, self.diffusion.unet.multiple // self.diffusion.rate_ratio)
        quantised = self.model.quantizer.decode(torch.from_numpy(np.ascontiguousarray(codes))[None])
        if pad:
            quantised = torch.nn.functional.pad(quantised, (0, pad), mode="replicate")
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        return self.diffusion.generate(
            quantised, self.n_q, self.steps, self.eta, self.midway_t, self.lam, generator, self.clip
        )

    def torch_modules(self) -> dict:
        """Encoder (the RVQ encoder) and one diffusion decoding (all network evaluations + autoencoder decoder)."""
        import torch

        from .parts import FunctionPart

        parts = super().torch_modules()
        frames = self.sample_rate // self.hop
        codes = torch.zeros(1, self.n_q, frames, dtype=torch.long)
        decode = FunctionPart(
            torch.nn.ModuleList([self.diffusion, self.ae_decoder]),
            lambda c: self.ae_decoder(self._latents(c[0].numpy(), self.seed, 0)),
        )
        return {"encoder": parts["encoder"], "decoder": (decode, codes, 1.0)}
