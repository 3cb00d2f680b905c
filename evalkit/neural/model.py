"""The RVQ autoencoder: causal SEANet-style encoder and decoder around a residual VQ.

Waveform (B, 1, T) at 16 kHz -> encoder (strided causal convolutions, hop = prod(strides),
e.g. 320 = 50 frames/s) -> latents (B, dim, T / hop) -> residual VQ (n_q codebooks of
`codebook_size`) -> decoder (causal transposed convolutions) -> waveform. Zero lookahead: see
modules.py. Checkpoints are a dict of plain tensors plus a JSON config, read with
`torch.load(weights_only=True)` (no pickled code).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import dataclass_from_dict
from ..errors import ConfigError, failure_line
from .modules import Activation, CausalConv1d, CausalConvTranspose1d, ResidualUnit, StreamSequential
from .quantizer import ResidualVQ
from .vocos import build_istft_decoder

__all__ = [
    "RVQConfig",
    "RVQCodecModel",
    "EncoderPart",
    "DecoderPart",
    "save_inference",
    "load_inference",
    "CHECKPOINT_FORMAT",
    "build_fitting",
    "stored_config",
    "read_checkpoint",
]

CHECKPOINT_FORMAT = "evalkit-rvq-1"


@dataclass(frozen=True)
class RVQConfig:
    """Architecture of an RVQ codec model; stored inside every checkpoint."""

    sample_rate: int = 16000
    channels: int = 16  # after the input convolution; doubles at each downsampling
    max_channels: int = 256
    strides: tuple[int, ...] = (2, 4, 5, 8)
    dilations: tuple[int, ...] = (1, 3)  # one residual unit per dilation in each block
    latent_dim: int = 64
    codebook_size: int = 1024
    n_q: int = 12
    dropout_choices: tuple[int, ...] = (3, 6, 12)  # codebook counts trained for (quantizer dropout)
    kernel: int = 7
    ema_decay: float = 0.99
    dead_fraction: float = 0.1
    # decoder "conv" (transposed convolutions, v1) or "istft" (vocos.py: ConvNeXt blocks at the frame
    # rate and at x decoder_upsample, then an inverse STFT of n_fft at hop / decoder_upsample)
    decoder: str = "conv"
    decoder_channels: int = 256
    decoder_blocks: tuple[int, ...] = (2, 6)  # ConvNeXt blocks before and after the upsampling
    decoder_upsample: int = 2
    n_fft: int = 640
    expansion: int = 3
    extra: dict = field(default_factory=dict)  # free-form notes; ignored by the model

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @property
    def lookahead(self) -> int:
        """Samples the decoded waveform lags the input: 0 for "conv", the iSTFT window's look-back for "istft"."""
        return self.n_fft - self.hop // self.decoder_upsample if self.decoder == "istft" else 0

    @classmethod
    def from_dict(cls, data: dict) -> RVQConfig:
        config = dataclass_from_dict(cls, data, "rvq model")
        if config.decoder not in ("conv", "istft"):
            raise ConfigError(f"rvq model: decoder must be 'conv' or 'istft', got {config.decoder!r}")
        if config.decoder == "istft" and (config.hop % config.decoder_upsample or len(config.decoder_blocks) != 2):
            raise ConfigError("rvq model: decoder_upsample must divide the hop, decoder_blocks is [before, after]")
        return config


def _width(config: RVQConfig, level: int) -> int:
    return min(config.channels * 2**level, config.max_channels)


def build_encoder(c: RVQConfig) -> StreamSequential:
    layers = [CausalConv1d(1, _width(c, 0), c.kernel)]
    for level, stride in enumerate(c.strides):
        layers += [ResidualUnit(_width(c, level), dilation=d) for d in c.dilations]
        layers += [Activation(), CausalConv1d(_width(c, level), _width(c, level + 1), 2 * stride, stride=stride)]
    layers += [Activation(), CausalConv1d(_width(c, len(c.strides)), c.latent_dim, 3)]
    return StreamSequential(*layers)


def build_decoder(c: RVQConfig) -> StreamSequential:
    if getattr(c, "decoder", "conv") == "istft":
        return build_istft_decoder(
            c.latent_dim,
            c.decoder_channels,
            *c.decoder_blocks,
            c.decoder_upsample,
            c.n_fft,
            c.hop // c.decoder_upsample,
            c.expansion,
        )
    top = len(c.strides)
    layers = [CausalConv1d(c.latent_dim, _width(c, top), c.kernel)]
    for level, stride in zip(range(top - 1, -1, -1), reversed(c.strides)):
        layers += [Activation(), CausalConvTranspose1d(_width(c, level + 1), _width(c, level), stride)]
        layers += [ResidualUnit(_width(c, level), dilation=d) for d in c.dilations]
    layers += [Activation(), CausalConv1d(_width(c, 0), 1, c.kernel)]
    return StreamSequential(*layers)


class RVQCodecModel(nn.Module):
    """Encoder, residual VQ and decoder; `forward` is the training path."""

    def __init__(self, config: RVQConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        self.quantizer = ResidualVQ(
            config.latent_dim,
            config.n_q,
            config.codebook_size,
            config.dropout_choices,
            decay=config.ema_decay,
            dead_fraction=config.dead_fraction,
        )
        self.decoder = build_decoder(config)

    def forward(self, x: torch.Tensor, n_q: int | None = None):
        """(reconstruction, codes, commitment loss) for waveforms (B, 1, T), T a multiple of the hop."""
        z = self.encoder(x)
        zq, codes, commitment = self.quantizer(z, n_q)
        return self.decoder(zq), codes, commitment

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """Codes (B, n_q, T / hop)."""
        return self.quantizer.encode(self.encoder(x), n_q)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Waveform (B, 1, frames * hop) from codes (B, n_q, frames)."""
        return self.decoder(self.quantizer.decode(codes))

    @torch.no_grad()
    def decode_stream(self, codes: torch.Tensor, state=None):
        """Decode a chunk of frames with carried state: (waveform chunk, state). Chunks decoded in
        order equal the whole decode (up to float rounding)."""
        return self.decoder.stream(self.quantizer.decode(codes), state)

    @torch.no_grad()
    def initialise_codebooks(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """k-means the codebooks on the latents of a batch of audio (B, 1, T)."""
        self.quantizer.initialise(self.encoder(x), generator)


class EncoderPart(nn.Module):
    """Waveform (B, 1, T) -> codes at n_q codebooks: what an encoder runs (for MAC counts)."""

    def __init__(self, model: RVQCodecModel, n_q: int):
        super().__init__()
        self.model, self.n_q = model, n_q

    def forward(self, x):
        return self.model.encode(x, self.n_q)


class DecoderPart(nn.Module):
    """Codes -> waveform: what a decoder runs (for MAC counts)."""

    def __init__(self, model: RVQCodecModel):
        super().__init__()
        self.model = model

    def forward(self, codes):
        return self.model.decode(codes)


INT8_SCALE = ".int8_scale"  # a weight stored as int8 rows keeps its float16 per-row scale under its name + this


def int8_rows(state: dict, keep=lambda name: False) -> dict:
    """Float weights of two or more dimensions as int8 with one float16 scale per output row (half the size
    of float16), except those `keep` names; everything else as it is."""
    out = {}
    for name, value in state.items():
        if not value.is_floating_point() or value.ndim < 2 or keep(name):
            out[name] = value
            continue
        rows = value.detach().float().reshape(value.shape[0], -1)
        scale = (rows.abs().amax(1).clamp_min(1e-6) / 127).half()
        out[name] = torch.round(rows / scale.float()[:, None]).to(torch.int8).reshape(value.shape).contiguous()
        out[name + INT8_SCALE] = scale.contiguous()
    return out


def float_state(state: dict) -> dict:
    """float32 weights from a stored state (float16 tensors, or int8 rows with their scales)."""
    out = {}
    for name, value in state.items():
        scale = state.get(name + INT8_SCALE)
        if name.endswith(INT8_SCALE):
            continue
        if scale is not None:
            out[name] = (value.float().reshape(value.shape[0], -1) * scale.float()[:, None]).reshape(value.shape)
        else:
            out[name] = value.float() if value.is_floating_point() else value
    return out


def save_inference(model: RVQCodecModel, path: str | Path, half: bool = True, int8_decoder: bool = False) -> Path:
    """Write the weights a codec needs (no discriminator, no optimiser); float16 by default, the decoder's
    matrices int8 with `int8_decoder` (the encoder and codebooks, which fix the codes, stay float16)."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith(("usage", "embed_sum"))
    }
    if int8_decoder:
        state = int8_rows(state, keep=lambda name: not name.startswith("decoder."))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = json.dumps(asdict(model.config), sort_keys=True)
    torch.save({"format": CHECKPOINT_FORMAT, "config": config, "state_dict": state}, path)
    return path


def stored_config(data: dict, key: str, path) -> dict:
    """The JSON object a weights file keeps under `key`; ConfigError naming the file otherwise."""
    try:
        config = json.loads(data[key])
    except (KeyError, TypeError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: no model configuration (a JSON object) under {key!r}")
    return config


def build_fitting(build, state, path) -> nn.Module:
    """`build()`, once the shapes of the model it builds, found on the meta device (nothing allocated),
    match the tensors of `state`: a configuration that declares a model far larger than the weights it
    came with is refused before any memory is taken for it."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: the weights are not a mapping of names to tensors")
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except Exception as err:  # noqa: BLE001 - any configuration torch cannot build is the file's fault
        raise ConfigError(f"{path}: its model configuration cannot be built ({failure_line(err)})") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ConfigError(f"{path}: weights tensor {name} holds NaN or infinite values")
        if name in shapes and tuple(tensor.shape) != shapes[name]:
            raise ConfigError(
                f"{path}: weights do not match the model its configuration describes "
                f"({name} is {tuple(tensor.shape)}, the model's {shapes[name]})"
            )
    return build()


def read_checkpoint(path: str | Path):
    """torch.load with weights_only (plain tensors and containers: no pickled code runs); ConfigError otherwise."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a configuration problem
        raise ConfigError(f"{path}: not a readable torch checkpoint ({failure_line(err)})") from None


def read_weights(path: str | Path, fmt: str, what: str) -> dict:
    """The dict of a weights file of format `fmt` (plain tensors and strings only); ConfigError otherwise."""
    data = read_checkpoint(path)
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ConfigError(f"{path}: not {what} (format {fmt})")
    return data


def load_inference(path: str | Path) -> RVQCodecModel:
    """A model in eval mode, float32, from `save_inference`'s file (or a training checkpoint)."""
    data = read_weights(path, CHECKPOINT_FORMAT, "an evalkit RVQ checkpoint")
    config = RVQConfig.from_dict(stored_config(data, "config", path))
    model = build_fitting(lambda: RVQCodecModel(config), data["state_dict"], path)
    missing, unexpected = model.load_state_dict(float_state(data["state_dict"]), strict=False)
    if unexpected or any(not k.endswith(("usage", "embed_sum")) for k in missing):
        raise ConfigError(
            f"{path}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()
