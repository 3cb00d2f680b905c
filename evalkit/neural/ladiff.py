"""LaDiffCodec's models: a continuous autoencoder (the latent space) and the conditional latent diffusion model.

* `ContinuousAE`: the SEANet encoder and decoder of model.py without a quantizer, hop 40 at 16 kHz
  (400 latent frames/s x 64 channels by default), causal, trained with negative SI-SDR and
  multi-scale mel losses. Its decoder turns generated latents into the waveform.
* `LatentDiffusion`: the codes' quantised latents (from the RVQ codec) upsampled by learned
  transposed convolutions to the latent rate (the condition, also trained to regress the scaled
  latent, which makes it the "normalised condition" midway infilling starts from) and a 1-D U-Net
  predicting the noise, on latents multiplied by a stored constant (`latent_scale`, 1 / their SD
  on training data).

Weights files are dicts of tensors plus JSON configs, read with `torch.load(weights_only=True)`.
The codec's file bundles the diffusion model with the autoencoder's decoder.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import dataclass_from_dict
from ..errors import ConfigError, first_line
from .diffusion import CosineSchedule, sample
from .model import build_decoder, build_encoder, build_fitting, float_state, int8_rows, read_weights, stored_config
from .unet import ConditionUpsampler, UNet1D

__all__ = [
    "AEConfig",
    "ContinuousAE",
    "DiffusionConfig",
    "LatentDiffusion",
    "save_ladiff",
    "load_ladiff",
    "save_autoencoder",
    "load_autoencoder",
    "codes_fingerprint",
]

AE_FORMAT, LADIFF_FORMAT = "evalkit-ae-1", "evalkit-ladiff-1"


@dataclass(frozen=True)
class AEConfig:
    """The continuous autoencoder's architecture (SEANet, as RVQConfig without a quantizer)."""

    sample_rate: int = 16000
    channels: int = 16
    max_channels: int = 128
    strides: tuple[int, ...] = (2, 4, 5)  # hop 40: 400 latent frames/s
    dilations: tuple[int, ...] = (1, 3)
    latent_dim: int = 64
    kernel: int = 7

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @classmethod
    def from_dict(cls, data: dict) -> AEConfig:
        return dataclass_from_dict(cls, data, "autoencoder")


class ContinuousAE(nn.Module):
    """Waveform (B, 1, T) <-> latents (B, latent_dim, T / hop); no quantizer."""

    def __init__(self, config: AEConfig):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = build_encoder(config), build_decoder(config)

    def forward(self, x):
        return self.decoder(self.encoder(x))


@dataclass(frozen=True)
class DiffusionConfig:
    """The conditional latent diffusion model's architecture and its noise schedule."""

    latent_dim: int = 64  # the autoencoder's latent channels
    code_dim: int = 64  # the discrete codec's latent channels
    upsample_factors: int = 3  # x2 each: 50 code frames/s -> 400 latent frames/s
    upsampler_channels: int = 128
    widths: tuple[int, ...] = (64, 128, 192)
    blocks: int = 2
    emb_dim: int = 128
    mid_dilations: tuple[int, ...] = (1, 2, 4, 8)
    timesteps: int = 1000
    max_n_q: int = 16

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        return dataclass_from_dict(cls, data, "latent diffusion")


class LatentDiffusion(nn.Module):
    """Condition upsampler + U-Net denoiser + the latent scale constant."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.upsampler = ConditionUpsampler(
            config.code_dim, config.latent_dim, config.upsampler_channels, config.upsample_factors
        )
        self.unet = UNet1D(
            config.latent_dim, config.widths, config.blocks, config.emb_dim, config.max_n_q, config.mid_dilations
        )
        self.register_buffer("latent_scale", torch.tensor(1.0))
        self.schedule = CosineSchedule(config.timesteps)

    @property
    def rate_ratio(self) -> int:
        return 2**self.config.upsample_factors

    def condition(self, quantised: torch.Tensor) -> torch.Tensor:
        """Quantised code latents (B, code_dim, F) -> the condition in scaled-latent space (B, latent_dim, F * ratio)."""
        return self.upsampler(quantised)

    def eps(self, x_t, t, condition, n_q: int):
        n_q = torch.full((x_t.shape[0],), n_q, dtype=torch.long, device=x_t.device) if isinstance(n_q, int) else n_q
        return self.unet(x_t, t, condition, n_q)

    def loss(self, latents, quantised, n_q, generator=None):
        """{"diff": L1 of the predicted noise, "cond": L1 of the condition against the scaled latent}."""
        x0 = latents * self.latent_scale
        condition = self.condition(quantised)
        t = torch.randint(1, self.config.timesteps + 1, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        eps = self.eps(self.schedule.q_sample(x0, t, noise), t, condition, n_q)
        return {"diff": (eps - noise).abs().mean(), "cond": (condition - x0).abs().mean()}

    @torch.no_grad()
    def generate(
        self,
        quantised,
        n_q: int,
        evaluations: int,
        eta: float = 0.0,
        midway_t: int | None = None,
        lam: float = 0.0,
        generator: torch.Generator | None = None,
        clip: float = 0.0,
    ) -> torch.Tensor:
        """Unscaled latents (B, latent_dim, F * ratio) for the quantised code latents."""
        condition = self.condition(quantised)
        x = sample(
            self.schedule,
            lambda x, t: self.eps(x, t, condition, n_q),
            condition,
            evaluations,
            eta,
            midway_t,
            lam,
            generator,
            clip,
        )
        return x / self.latent_scale


# -- weights files --------------------------------------------------------------------------------


def codes_fingerprint(rvq: nn.Module) -> str:
    """sha256 of what fixes an RVQ model's codes (encoder weights and codebooks, as float16): a diffusion
    model trained on one model's codes works with any weights file that shares them (e.g. a later decoder)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(rvq.state_dict().items()):
        if name.startswith("encoder.") or name.endswith(".codebook"):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().half().numpy().tobytes())
    return digest.hexdigest()


def _half_state(module: nn.Module, half: bool) -> dict:
    return {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in module.state_dict().items()
    }


def _read(path: str | Path, fmt: str) -> dict:
    return read_weights(path, fmt, "an evalkit weights file")


def _load_state(module: nn.Module, state: dict, path) -> nn.Module:
    try:
        module.load_state_dict(float_state(state))
    except RuntimeError as err:
        raise ConfigError(f"{path}: weights do not match the model ({first_line(err)})") from None
    return module.eval()


def save_autoencoder(model: ContinuousAE, path: str | Path) -> Path:
    """Full-precision weights of the autoencoder (training uses its encoder, the codec its decoder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"format": AE_FORMAT, "config": json.dumps(asdict(model.config)), "state_dict": _half_state(model, False)}, path
    )
    return path


def load_autoencoder(path: str | Path) -> ContinuousAE:
    data = _read(path, AE_FORMAT)
    config = AEConfig.from_dict(stored_config(data, "config", path))
    return _load_state(build_fitting(lambda: ContinuousAE(config), data["state_dict"], path), data["state_dict"], path)


def save_ladiff(
    model: LatentDiffusion, autoencoder: ContinuousAE, rvq_codes: str, path: str | Path, int8: bool = False
) -> Path:
    """The codec's weights: diffusion model + autoencoder decoder (float16; with `int8` the diffusion model's
    matrices int8, see model.int8_rows) + the codes_fingerprint of the RVQ model they were trained on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _half_state(model, True)
    torch.save(
        {
            "format": LADIFF_FORMAT,
            "config": json.dumps(asdict(model.config)),
            "ae_config": json.dumps(asdict(autoencoder.config)),
            "rvq_codes": rvq_codes,
            "state_dict": int8_rows(state) if int8 else state,
            "decoder": _half_state(autoencoder.decoder, True),
        },
        path,
    )
    return path


def load_ladiff(path: str | Path) -> tuple[LatentDiffusion, nn.Module, AEConfig, str]:
    """(diffusion model, autoencoder decoder, autoencoder config, codes_fingerprint of the RVQ model it expects)."""
    data = _read(path, LADIFF_FORMAT)
    config = DiffusionConfig.from_dict(stored_config(data, "config", path))
    model = _load_state(
        build_fitting(lambda: LatentDiffusion(config), data["state_dict"], path), data["state_dict"], path
    )
    ae_config = AEConfig.from_dict(stored_config(data, "ae_config", path))
    decoder = _load_state(build_fitting(lambda: build_decoder(ae_config), data["decoder"], path), data["decoder"], path)
    return model, decoder, ae_config, str(data["rvq_codes"])
