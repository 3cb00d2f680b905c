"""Training losses for neural codecs: multi-resolution STFT, multi-scale mel, waveform L1, and
adversarial + feature-matching losses against a multi-scale STFT discriminator (EnCodec's MS-STFTD).

All spectra come from `torch.stft` and evalkit.melbank's filterbank (no torchaudio). Losses are
computed in float32 even under mixed precision, where STFT in half precision loses too much.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import melbank

__all__ = [
    "mel_filterbank",
    "stft_magnitude",
    "negative_si_snr",
    "MultiResolutionSTFTLoss",
    "MelLoss",
    "STFTDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "hinge_discriminator_loss",
    "generator_adversarial_loss",
    "feature_matching_loss",
]


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, device=None) -> torch.Tensor:
    """Unit-area triangles on the HTK mel scale from 0 Hz to Nyquist, float32: (n_mels, n_fft // 2 + 1)."""
    bank = melbank.mel_filterbank(sample_rate, n_fft, n_mels, unit_area=True)
    return torch.from_numpy(bank.astype(np.float32)).to(device)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """|STFT| of (B, 1, T) or (B, T) signals, Hann window, float32: (B, freq, frames)."""
    x = x.float().reshape(-1, x.shape[-1])
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True, center=True, pad_mode="constant")
    return spec.abs().clamp_min(1e-7)


def negative_si_snr(y_hat, y, eps: float = 1e-8) -> torch.Tensor:
    """Minus the scale-invariant SNR in dB, averaged over the batch: rewards the waveform's phase,
    which spectral losses ignore, without the pull towards silence of a plain L1/L2 loss."""
    y_hat, y = y_hat.float().reshape(y.shape[0], -1), y.float().reshape(y.shape[0], -1)
    scale = (y_hat * y).sum(-1, keepdim=True) / (y.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * y
    ratio = target.pow(2).sum(-1) / ((y_hat - target).pow(2).sum(-1) + eps)
    return -10 * torch.log10(ratio + eps).mean()


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over FFT sizes (hop = n_fft / 4)."""

    def __init__(self, fft_sizes=(2048, 1024, 512, 256, 128)):
        super().__init__()
        self.fft_sizes = tuple(fft_sizes)

    def forward(self, y_hat, y):
        total = 0.0
        for n_fft in self.fft_sizes:
            a, b = stft_magnitude(y_hat, n_fft, n_fft // 4), stft_magnitude(y, n_fft, n_fft // 4)
            convergence = torch.linalg.norm(b - a) / torch.linalg.norm(b).clamp_min(1e-7)
            total = total + convergence + F.l1_loss(a.log(), b.log())
        return total / len(self.fft_sizes)


class MelLoss(nn.Module):
    """L1 + L2 on log mel spectra at several window sizes (EnCodec's reconstruction loss)."""

    def __init__(self, sample_rate: int, fft_sizes=(2048, 1024, 512, 256), n_mels: int = 64):
        super().__init__()
        self.sample_rate, self.fft_sizes, self.n_mels = sample_rate, tuple(fft_sizes), n_mels

    def forward(self, y_hat, y):
        total = 0.0
        for n_fft in self.fft_sizes:
            bank = mel_filterbank(n_fft, min(self.n_mels, n_fft // 4), self.sample_rate, y.device)
            a = (bank @ stft_magnitude(y_hat, n_fft, n_fft // 4)).clamp_min(1e-5).log()
            b = (bank @ stft_magnitude(y, n_fft, n_fft // 4)).clamp_min(1e-5).log()
            total = total + F.l1_loss(a, b) + F.mse_loss(a, b)
        return total / len(self.fft_sizes)


class STFTDiscriminator(nn.Module):
    """2-D convolutions over one STFT's real and imaginary parts (time x frequency)."""

    def __init__(self, n_fft: int, filters: int = 16, dilations=(1, 2, 4)):
        super().__init__()
        self.n_fft = n_fft
        layers = [nn.Conv2d(2, filters, (3, 9), padding=(1, 4))]
        for dilation in dilations:
            layers.append(
                nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(dilation, 1), padding=(dilation, 4))
            )
        layers.append(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1)))
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(filters, 1, (3, 3), padding=(1, 1))

    def forward(self, x):
        """(logits, feature maps) for signals (B, 1, T)."""
        window = torch.hann_window(self.n_fft, device=x.device)
        spec = torch.stft(
            x.float().reshape(-1, x.shape[-1]),
            self.n_fft,
            self.n_fft // 4,
            window=window,
            return_complex=True,
            normalized=True,
        )
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, frames, freq)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """STFT discriminators at several FFT sizes."""

    def __init__(self, fft_sizes=(1024, 512, 256), filters: int = 16):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, filters) for n in fft_sizes)

    def forward(self, x):
        return [d(x) for d in self.discriminators]


def hinge_discriminator_loss(real_outputs, fake_outputs) -> torch.Tensor:
    loss = 0.0
    for (real, _), (fake, _) in zip(real_outputs, fake_outputs):
        loss = loss + F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return loss / len(real_outputs)


def generator_adversarial_loss(fake_outputs) -> torch.Tensor:
    return sum(F.relu(1 - fake).mean() for fake, _ in fake_outputs) / len(fake_outputs)


def feature_matching_loss(real_outputs, fake_outputs) -> torch.Tensor:
    """Mean over layers of L1(fake features, real features) / mean |real features|."""
    loss, count = 0.0, 0
    for (_, real_features), (_, fake_features) in zip(real_outputs, fake_outputs):
        for real, fake in zip(real_features, fake_features):
            loss = loss + F.l1_loss(fake, real.detach()) / real.detach().abs().mean().clamp_min(1e-5)
            count += 1
    return loss / max(count, 1)
