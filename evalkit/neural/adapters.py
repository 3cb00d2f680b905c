"""Adapters for pretrained neural codecs, each through its own package: EnCodec, SNAC, Mimi, DAC.

Each adapter loads a local checkpoint named in its card (a path relative to the card folder,
or absolute), pinned by the sha256 of its weights file and verified before loading (no hub
downloads: HF_HUB_OFFLINE is set before transformers is imported). Codes are bit-packed at the
codebook's bit width, a whole number of bytes per packet (packets.py), so the bitrate is the
codes' true rate. Lost packets repeat the previous packet's codes (concealment "repeat").

Installing without PyPI's torchaudio (a CUDA build that breaks beside torch 2.13.0 CPU):
see docs/neural.md and each adapter's install hint. EnCodec 0.1.1 imports torchaudio at module
level for two file helpers it never needs here, so `_import_encodec` lends it an inert stand-in
for the duration of that one import. DAC cannot be used: descript-audio-codec imports
descript-audiotools, which imports torchaudio throughout; it reports itself unavailable.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import types
from typing import ClassVar

import numpy as np

from ..codecs.base import Codec, CodecInfo
from ..errors import ConfigError, failure_line, first_line
from .bitpack import code_bits, frames_per_whole_bytes
from .codec import TORCH_HINT, torch_missing
from .packets import check_header, codes_to_packets, packets_to_codes, silence_mask
from .weights import pinned_path, resolve_weights

__all__ = ["EncodecAdapter", "SnacAdapter", "MimiAdapter", "DacAdapter", "ADAPTERS", "ENCODEC_24KHZ"]

# encodec_24khz as EncodecModel.encodec_model_24khz builds it.
ENCODEC_24KHZ = {
    "sample_rate": 24000,
    "channels": 1,
    "n_filters": 32,
    "ratios": [8, 5, 4, 2],
    "dimension": 128,
    "bins": 1024,
    "lstm": 2,
    "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0],
    "causal": True,
    "norm": "weight_norm",
}


class _Adapter(Codec):
    """Shared packetisation: codes (n_q, frames) at `bits` each, `frames_per_packet` frames a packet."""

    package: ClassVar[str] = ""  # import name
    install_hint: ClassVar[str] = ""
    concealment = "repeat"
    local_params = ("checkpoint",)  # a path on this machine; the sha256 travels in the stream
    family: ClassVar[str] = "neural"
    causal: ClassVar[bool] = True
    sample_rate: int
    hop: int  # samples per code frame
    n_q: int  # codes per frame
    bits: int
    sha256: str

    @classmethod
    def unavailable(cls) -> str | None:
        missing = torch_missing()
        if missing:
            return missing
        if importlib.util.find_spec(cls.package) is None:
            return f"{cls.package} is not installed: {cls.install_hint}"
        return None

    def _setup_packets(self) -> None:
        self.frames_per_packet = frames_per_whole_bytes(self.n_q * self.bits)

    @property
    def info(self) -> CodecInfo:
        version = importlib.import_module(self.package).__dict__.get("__version__") or _dist_version(self.package)
        return CodecInfo(
            name=self.backend,
            version=f"{self.package} {version}, weights {self.sha256[:12]}",
            family=self.family,
            sample_rate=self.sample_rate,
            frame_samples=self.hop * self.frames_per_packet,
            lookahead_samples=0,
            nominal_bitrate=self.n_q * self.bits * self.sample_rate / self.hop,
            streaming=self.causal,
            needs=("torch", self.package, "weights"),
        )

    def _header(self) -> dict:
        return {"n_q": self.n_q, "fpp": self.frames_per_packet, "weights": self.sha256[:16]}

    def _encode(self, samples):
        import torch

        with torch.inference_mode():
            codes = self._codes(torch.from_numpy(np.ascontiguousarray(samples[None])))
        return self._header(), codes_to_packets(codes, self.bits, self.frames_per_packet)

    def _decode(self, header, packets):
        import torch

        check_header(header, self._header(), self.backend)
        codes, leading = packets_to_codes(packets, self.n_q, self.bits, self.frames_per_packet)
        with torch.inference_mode():
            out = self._audio(codes).reshape(-1).float().numpy()
        return out * silence_mask(len(out), leading, self.hop)

    def torch_modules(self) -> dict:
        """About one second of encoding and of decoding as torch modules (evalkit.profile protocol)."""
        import torch

        from .parts import FunctionPart

        frames = max(1, round(self.sample_rate / self.hop))
        seconds = frames * self.hop / self.sample_rate
        audio = torch.zeros(1, 1, frames * self.hop)
        codes = torch.zeros(self.n_q, frames, dtype=torch.long)
        return {
            "encoder": (FunctionPart(self.model, self._codes), audio, seconds),
            "decoder": (FunctionPart(self.model, lambda c: self._audio(c.numpy())), codes, seconds),
        }

    def _codes(self, x) -> np.ndarray:
        """(n_q, frames) int codes of audio x (1, 1, T)."""
        raise NotImplementedError

    def _audio(self, codes: np.ndarray):
        """Decoded waveform tensor from (n_q, frames) codes."""
        raise NotImplementedError


def _dist_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _check_int(value, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return value


# -- EnCodec -----------------------------------------------------------------------------------


def _import_encodec():
    """Import encodec 0.1.1, lending it an inert torchaudio only if the real one cannot load.

    encodec/utils.py imports torchaudio for convert_audio and save_audio, which this adapter
    never calls; the stand-in raises if anything touches it, and leaves sys.modules afterwards."""
    if "encodec" in sys.modules:
        return sys.modules["encodec"]
    try:
        importlib.import_module("torchaudio")
        stub = None
    except (ImportError, OSError):
        stub = types.ModuleType("torchaudio")
        stub.__getattr__ = _torchaudio_absent  # type: ignore[attr-defined]
        sys.modules["torchaudio"] = stub
    try:
        return importlib.import_module("encodec")
    finally:
        if stub is not None and sys.modules.get("torchaudio") is stub:
            del sys.modules["torchaudio"]


def _torchaudio_absent(name):
    raise ImportError(f"torchaudio.{name}: torchaudio is not installed (evalkit's EnCodec adapter does not use it)")


def _build_encodec(arch: dict):
    encodec = _import_encodec()
    from encodec import modules, quantization

    shared = dict(
        channels=arch["channels"],
        dimension=arch["dimension"],
        n_filters=arch["n_filters"],
        ratios=list(arch["ratios"]),
        norm=arch["norm"],
        causal=arch["causal"],
        lstm=arch["lstm"],
    )
    encoder, decoder = modules.SEANetEncoder(**shared), modules.SEANetDecoder(**shared)
    frame_rate = math.ceil(arch["sample_rate"] / encoder.hop_length)
    n_q = int(1000 * arch["target_bandwidths"][-1] // (frame_rate * code_bits(arch["bins"])))
    quantizer = quantization.ResidualVectorQuantizer(dimension=arch["dimension"], n_q=n_q, bins=arch["bins"])
    return encodec.EncodecModel(
        encoder,
        decoder,
        quantizer,
        list(arch["target_bandwidths"]),
        arch["sample_rate"],
        arch["channels"],
        normalize=False,
        segment=None,
        name="evalkit",
    )


def _load_fitting(model, state: dict, path):
    """The model with `state` loaded, in eval mode; a missing or unexpected tensor names the file."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"{path}: weights do not match the model ({first_line(err)})") from None
    return model.eval()


def _check_encodec_codebooks(arch: dict, state, path) -> None:
    """The codebooks the architecture's largest bandwidth needs must be in the file: a bandwidth of
    10^9 kbit/s would otherwise build millions of quantizer layers before anything is compared."""
    bandwidths, bins = arch.get("target_bandwidths"), arch.get("bins")
    try:
        needed = 1000 * max(bandwidths) / (arch["sample_rate"] / math.prod(arch["ratios"])) / math.log2(bins)
    except (TypeError, ValueError, KeyError, ZeroDivisionError):
        raise ConfigError(
            "encodec: architecture needs positive numbers for sample_rate, ratios, bins and target_bandwidths"
        ) from None
    held = len([k for k in state if k.endswith("._codebook.embed")]) if isinstance(state, dict) else 0
    if needed > held + 1:
        raise ConfigError(f"{path}: {max(bandwidths)} kbit/s needs about {needed:.0f} codebooks; the file holds {held}")


class EncodecAdapter(_Adapter):
    """Meta's EnCodec (causal 24 kHz model: 75 frames/s, 1024-entry codebooks, 1.5-24 kbit/s).

    `checkpoint`: the state-dict file (e.g. encodec_24khz-d7cc33bc.th); `bandwidth` in kbit/s;
    `architecture` overrides ENCODEC_24KHZ keys (for other or test models)."""

    package = "encodec"
    install_hint = "pip install --no-deps encodec==0.1.1 einops==0.8.2 (and " + TORCH_HINT + "); never torchaudio"
    family = "neural-encodec"

    def __init__(self, checkpoint: str, sha256: str, bandwidth: float = 6.0, architecture: dict | None = None):

        from .model import build_fitting, read_checkpoint

        arch = {**ENCODEC_24KHZ, **(architecture or {})}
        path = pinned_path(checkpoint, sha256, "encodec")
        state = read_checkpoint(path)
        _check_encodec_codebooks(arch, state, path)
        self.model = _load_fitting(build_fitting(lambda: _build_encodec(arch), state, path), state, path)
        if bandwidth not in self.model.target_bandwidths:
            raise ConfigError(f"encodec: bandwidth {bandwidth} is not one of {self.model.target_bandwidths} kbit/s")
        self.model.set_target_bandwidth(bandwidth)
        self.sha256, self.sample_rate, self.hop = (
            sha256.lower(),
            arch["sample_rate"],
            int(self.model.encoder.hop_length),
        )
        self.bits = code_bits(arch["bins"])
        self.n_q = self.model.quantizer.get_num_quantizers_for_bandwidth(self.model.frame_rate, bandwidth)
        self._setup_packets()

    def _codes(self, x):
        frames = self.model.encode(x)
        return frames[0][0][0].numpy()

    def _audio(self, codes):
        import torch

        return self.model.decode([(torch.from_numpy(codes)[None], None)])


# -- SNAC --------------------------------------------------------------------------------------


class SnacAdapter(_Adapter):
    """SNAC (multi-scale RVQ: coarse codebooks at lower frame rates; non-causal).

    `checkpoint`: a folder with config.json and pytorch_model.bin (as on the hub); `sha256`
    pins pytorch_model.bin. A packet holds every code of one padding unit (hop x lcm(vq
    strides[0], attention window) samples), codebook by codebook; units are grouped so a packet
    is whole bytes."""

    package = "snac"
    install_hint = "pip install --no-deps snac==1.2.1 einops==0.8.2 (and " + TORCH_HINT + ")"
    family = "neural-snac"
    causal = False

    def __init__(self, checkpoint: str, sha256: str):
        from snac import SNAC

        from .model import build_fitting, read_checkpoint

        folder = resolve_weights(checkpoint, "snac")
        path = pinned_path(folder / "pytorch_model.bin", sha256, "snac")
        state = read_checkpoint(path)
        self.model = _load_fitting(
            build_fitting(lambda: SNAC.from_config(str(folder / "config.json")), state, path), state, path
        )
        m = self.model
        self.unit_latents = math.lcm(m.vq_strides[0], m.attn_window_size or 1)
        self.sha256, self.sample_rate = sha256.lower(), int(m.sampling_rate)
        self.hop = int(m.hop_length) * self.unit_latents  # one "frame" = one padding unit
        self.counts = [self.unit_latents // s for s in m.vq_strides]  # codes per unit, per codebook
        self.bits, self.n_q = code_bits(m.codebook_size), sum(self.counts)
        self._setup_packets()

    def _codes(self, x):
        codes = self.model.encode(x)
        units = codes[0].shape[-1] // self.counts[0]
        per_codebook = [c[0].reshape(units, n) for c, n in zip(codes, self.counts)]
        return np.concatenate([c.numpy() for c in per_codebook], axis=1).T

    def _audio(self, codes):
        import torch

        units, bounds = codes.shape[1], np.cumsum([0] + self.counts)
        multi = [
            torch.from_numpy(np.ascontiguousarray(codes[a:b].T.reshape(1, -1))) for a, b in zip(bounds, bounds[1:])
        ]
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the decoder's noise blocks: same bytes, same audio
            return self.model.decode(multi)[..., : units * self.hop]


# -- Mimi --------------------------------------------------------------------------------------


def _check_mimi_layers(folder, weights) -> None:
    """config.json is not pinned: its transformer may not have more layers than the weights hold (10^5
    layers took 5 minutes and 8 GB before transformers compared any shape)."""
    import json

    from safetensors import safe_open

    try:
        layers = json.loads((folder / "config.json").read_text()).get("num_hidden_layers")
        with safe_open(str(weights), "pt") as tensors:
            held = {k.split(".")[2] for k in tensors.keys() if k.startswith("encoder_transformer.layers.")}
    except (OSError, ValueError, AttributeError) as err:
        raise ConfigError(f"{folder}: not a Mimi checkpoint folder ({failure_line(err)})") from None
    if not isinstance(layers, int) or not 0 < layers <= len(held):
        raise ConfigError(
            f"{folder}: config.json declares {layers!r} transformer layers; model.safetensors holds {len(held)}"
        )


class MimiAdapter(_Adapter):
    """Kyutai's Mimi through transformers' MimiModel (causal, 24 kHz, 12.5 frames/s, 2048-entry codebooks).

    `checkpoint`: a folder with config.json and model.safetensors (as on the hub); `sha256`
    pins model.safetensors; `n_q` codebooks (8 = 1.1 kbit/s, up to 32)."""

    package = "transformers"
    install_hint = (
        "pip install --no-deps transformers==5.24.0 huggingface-hub==2.4.0 tokenizers==0.23.3 "
        "safetensors==0.8.0 regex==2026.11.19 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 "
        "(and " + TORCH_HINT + ")"
    )
    family = "neural-mimi"

    def __init__(self, checkpoint: str, sha256: str, n_q: int = 8):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
        from transformers import MimiModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # loading prints bars otherwise, into every caller's output

        folder = resolve_weights(checkpoint, "mimi")
        _check_mimi_layers(folder, pinned_path(folder / "model.safetensors", sha256, "mimi"))
        try:
            self.model = MimiModel.from_pretrained(str(folder), local_files_only=True).eval()
        except (RuntimeError, ValueError, TypeError, OSError) as err:  # transformers: mismatched or unreadable
            raise ConfigError(f"{folder}: config.json and model.safetensors do not fit ({first_line(err)})") from None
        config = self.model.config
        self.n_q = _check_int(n_q, 1, config.num_quantizers, "mimi: n_q")
        self.sha256, self.sample_rate, self.hop = sha256.lower(), int(config.sampling_rate), int(config.frame_size)
        self.bits = code_bits(config.codebook_size)
        self._setup_packets()

    def _codes(self, x):
        return self.model.encode(x, num_quantizers=self.n_q).audio_codes[0].numpy()

    def _audio(self, codes):
        import torch

        return self.model.decode(torch.from_numpy(codes)[None]).audio_values


# -- DAC ---------------------------------------------------------------------------------------


class DacAdapter(_Adapter):
    """Descript Audio Codec. Unavailable here: its package cannot be imported without torchaudio."""

    package = "dac"
    install_hint = (
        "no working install: descript-audio-codec 1.0.0 imports descript-audiotools, which imports "
        "torchaudio (PyPI's build breaks beside torch 2.13.0 CPU); see docs/neural.md"
    )
    family = "neural-dac"
    causal = False

    @classmethod
    def unavailable(cls) -> str | None:
        missing = super().unavailable()
        if missing:
            return missing
        try:
            importlib.import_module("dac")
        except Exception as err:  # noqa: BLE001 - any import failure means unusable
            return f"dac cannot be imported ({type(err).__name__}: {err}); {cls.install_hint}"
        return None

    def __init__(self, checkpoint: str, sha256: str, n_q: int | None = None):
        import dac

        path = pinned_path(checkpoint, sha256, "dac")
        self.model = dac.DAC.load(str(path)).eval()
        self.n_q = _check_int(n_q or self.model.n_codebooks, 1, self.model.n_codebooks, "dac: n_q")
        self.sha256, self.sample_rate, self.hop = (
            sha256.lower(),
            int(self.model.sample_rate),
            int(self.model.hop_length),
        )
        self.bits = code_bits(self.model.codebook_size)
        self._setup_packets()

    def _codes(self, x):
        _, codes, *_ = self.model.encode(self.model.preprocess(x, self.sample_rate), n_quantizers=self.n_q)
        return codes[0, : self.n_q].numpy()

    def _audio(self, codes):
        import torch

        z = self.model.quantizer.from_codes(torch.from_numpy(codes)[None])[0]
        return self.model.decode(z)


ADAPTERS: dict[str, type[_Adapter]] = {
    "encodec": EncodecAdapter,
    "snac": SnacAdapter,
    "mimi": MimiAdapter,
    "dac": DacAdapter,
}
