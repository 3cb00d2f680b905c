"""The shared trainer's recipes for the LPCNet vocoders: `lpcnet-framewise` and `lpcnet-samplerate`.

Each training crop's features are computed here, with numpy, exactly as the encoder computes
them; on a share of the crops (`quantized_fraction`) they then go through the 1.6 kbit/s
quantizer, so the vocoder learns to decode quantized features as well as clean ones. The LPC
and excitation RMS come from the (possibly quantized) cepstrum, as in the decoder. The trainer
supplies the reconstruction losses (multi-resolution STFT and mel; the waveform L1 weight is
set to 0, as the vocoder does not reproduce the input's phase).

Model parameters: the VocoderConfig sizes, plus `quantizer` (a weights file whose codebooks
are used for the quantized crops and copied into the export), `quantized_fraction`, and
`init` (a weights file to start from: fine-tuning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..neural.recipe_base import Recipe
from .features import LPC_ORDER, NB_BANDS, RATE, features, lpc_from_cepstrum
from .framewise import FramewiseVocoder, VocoderConfig
from .quantizer import PACKET_FRAMES, PacketQuantizer
from .weights import load_weights, save_weights

__all__ = ["FramewiseRecipe", "SampleRateRecipe"]


class FramewiseRecipe(Recipe):
    """The framewise vocoder, trained on features of the crops (clean or quantized); the interface
    of evalkit.neural.recipe_base.Recipe."""

    def __init__(self, model_params: dict, discriminator_params: dict | None = None):
        params = dict(model_params)
        self.quantizer_path = params.pop("quantizer", None)
        self.quantized_fraction = float(params.pop("quantized_fraction", 0.5 if self.quantizer_path else 0.0))
        self.init = params.pop("init", None)
        start = load_weights(Path(self.init)) if self.init else None
        if start is not None:
            params = {**start.config["vocoder_config"], **params}
        self.config = VocoderConfig.from_dict(params)
        self.model = FramewiseVocoder(self.config)
        if start is not None:
            self.model.load_state_dict(start.vocoder_state(), strict=True)
        self.quantizer = (
            PacketQuantizer(load_weights(Path(self.quantizer_path)).codebooks()) if self.quantizer_path else None
        )
        self.discriminator = None
        self.sample_rate, self.hop = RATE, 640
        self.started_from = self.init

    def initialise(self, batch: torch.Tensor) -> None:
        """Per-cepstrum mean and deviation over the first batch (kept when fine-tuning)."""
        if self.init:
            return
        ceps = np.concatenate([features(x)[:, :NB_BANDS] for x in batch[:, 0].cpu().numpy()])
        net = self.model.frame_net
        net.feature_mean.copy_(torch.from_numpy(ceps.mean(axis=0)))
        net.feature_std.copy_(torch.from_numpy(ceps.std(axis=0) + 1e-3))

    def forward(self, batch: torch.Tensor):
        crops = batch[:, 0].detach().cpu().numpy()
        quantize = torch.rand(len(crops)) < self.quantized_fraction
        feats, lpc, rms = zip(*(self.crop_features(x, bool(q)) for x, q in zip(crops, quantize)))
        as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays).astype(np.float32)).to(batch.device)  # noqa: E731
        noise = torch.randn(batch.shape[0], batch.shape[-1], device=batch.device)
        speech = self.model(as_tensor(feats), as_tensor(lpc), as_tensor(rms), noise)
        return speech[:, None, : batch.shape[-1]], {}

    def crop_features(self, x: np.ndarray, quantize: bool):
        """(features, lpc, excitation RMS) of one crop, as the decoder would see them."""
        feats = features(x)
        if quantize and self.quantizer is not None:
            whole = len(feats) - len(feats) % PACKET_FRAMES
            feats = np.concatenate([self.quantizer.decode(self.quantizer.encode(feats[:whole])), feats[whole:]])
        lpc, rms = lpc_from_cepstrum(feats[:, :NB_BANDS])
        assert lpc.shape[1] == LPC_ORDER
        return feats, lpc, rms

    def export(self, path: Path) -> Path:
        codebooks = load_weights(Path(self.quantizer_path)).codebooks() if self.quantizer_path else None
        return save_weights(path, self.model, codebooks, {"init": Path(self.init).name if self.init else None})


class SampleRateRecipe(Recipe):
    """The reference LPCNet (samplerate.py), teacher-forced with noise injection and a cross-entropy
    loss (`ce`); the reconstruction handed to the trainer is the input itself, so its spectral losses
    are zero and carry no gradient (set their weights to 0)."""

    loss_weights = {"ce": 1.0}

    def __init__(self, model_params: dict, discriminator_params: dict | None = None):
        from .samplerate import SampleRateConfig, SampleRateLPCNet

        params = dict(model_params)
        self.noise_levels = float(params.pop("noise_levels", 1.0))
        self.config = SampleRateConfig.from_dict(params)
        self.model = SampleRateLPCNet(self.config)
        self.discriminator = None
        self.sample_rate, self.hop = RATE, 640

    def initialise(self, batch: torch.Tensor) -> None:
        ceps = np.concatenate([features(x)[:, :NB_BANDS] for x in batch[:, 0].cpu().numpy()])
        net = self.model.frame_net
        net.feature_mean.copy_(torch.from_numpy(ceps.mean(axis=0)))
        net.feature_std.copy_(torch.from_numpy(ceps.std(axis=0) + 1e-3))

    def forward(self, batch: torch.Tensor):
        from .samplerate import teacher_signals

        rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,))))  # drawn from torch: resumable
        feats, signals = [], []
        for x in batch[:, 0].detach().cpu().numpy():
            f, lpc, _ = features(x, with_lpc=True)
            feats.append(f)
            signals.append(teacher_signals(x, lpc, rng, self.noise_levels))
        sig, pred, exc, target = (torch.from_numpy(np.stack(a)).to(batch.device) for a in zip(*signals))
        logits = self.model(torch.from_numpy(np.stack(feats)).to(batch.device), sig, pred, exc)
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        return batch.detach(), {"ce": ce}

    def export(self, path: Path) -> Path:
        return save_weights(path, self.model, config={"vocoder": "samplerate"})
