"""A Vocos-style decoder: causal ConvNeXt blocks and an inverse-STFT head, streamable in chunks.

Instead of upsampling to the waveform with transposed convolutions, the network predicts one
short-time spectrum (log-magnitude and phase per bin) per `hop` samples and an overlap-add of
their inverse FFTs makes the waveform (Siuzdak, "Vocos", 2023). Spectra are what the
reconstruction losses measure, so the head converges in far fewer steps than a waveform
upsampler; phase is free to be any per-bin value, wrapped through cos/sin.

Timing: frame k's window covers output samples [k hop, k hop + n_fft), and frame k is computed
from latents up to the end of its own hop (causal blocks, modules.py). The decoded waveform is
therefore the input delayed by n_fft - hop samples (the window's look-back), which the codec
declares as its lookahead; training compares output[L:] with input[:-L].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .modules import CausalConv1d, CausalConvTranspose1d, StreamSequential

__all__ = ["ConvNeXtBlock", "ISTFTHead", "build_istft_decoder"]


class ConvNeXtBlock(nn.Module):
    """x + pointwise MLP(LayerNorm(causal depthwise conv(x))), with a small learned layer scale."""

    def __init__(self, channels: int, expansion: int = 3, kernel: int = 7):
        super().__init__()
        self.depthwise = CausalConv1d(channels, channels, kernel, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, expansion * channels)
        self.down = nn.Linear(expansion * channels, channels)
        self.scale = nn.Parameter(torch.full((channels,), 0.1))

    def _mlp(self, h):
        h = self.down(F.gelu(self.up(self.norm(h.transpose(1, 2)))))
        return (h * self.scale).transpose(1, 2)

    def forward(self, x):
        return x + self._mlp(self.depthwise(x))

    def stream(self, x, state):
        h, state = self.depthwise.stream(x, state)
        return x + self._mlp(h), state


class ISTFTHead(nn.Module):
    """Per-frame spectra (B, 2 * (n_fft // 2 + 1), K) -> waveform (B, 1, K * hop) by causal overlap-add."""

    def __init__(self, channels: int, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop, self.bins = n_fft, hop, n_fft // 2 + 1
        self.proj = nn.Conv1d(channels, 2 * self.bins, 1)
        window = torch.hann_window(n_fft)
        # constant overlap-add gain of the squared Hann window at this hop (1.5 at hop = n_fft / 4)
        self.register_buffer("window", window / (window.pow(2).sum() / hop), persistent=False)

    @property
    def overlap(self) -> int:
        return self.n_fft - self.hop

    def _frames(self, x):
        log_mag, phase = self.proj(x).float().chunk(2, dim=1)
        spectrum = torch.polar(log_mag.clamp(max=6.0).exp(), phase)
        return torch.fft.irfft(spectrum, n=self.n_fft, dim=1) * self.window[None, :, None]

    def _overlap_add(self, frames):
        """(B, n_fft, K) windowed frames -> (B, 1, (K - 1) hop + n_fft)."""
        length = (frames.shape[-1] - 1) * self.hop + self.n_fft
        return F.fold(frames, (1, length), (1, self.n_fft), stride=(1, self.hop)).reshape(frames.shape[0], 1, length)

    def forward(self, x):
        y = self._overlap_add(self._frames(x))
        return y[..., : x.shape[-1] * self.hop]

    def stream(self, x, state):
        y = self._overlap_add(self._frames(x))
        if state is not None:
            y = torch.cat([y[..., : self.overlap] + state, y[..., self.overlap :]], dim=-1)
        cut = x.shape[-1] * self.hop
        return y[..., :cut], y[..., cut:]


def build_istft_decoder(
    latent_dim: int,
    channels: int,
    blocks_low: int,
    blocks_high: int,
    upsample: int,
    n_fft: int,
    hop: int,
    expansion: int = 3,
) -> StreamSequential:
    """Latents at the frame rate -> ConvNeXt blocks -> causal x`upsample` -> ConvNeXt blocks -> iSTFT."""
    layers = [CausalConv1d(latent_dim, channels, 7)]
    layers += [ConvNeXtBlock(channels, expansion) for _ in range(blocks_low)]
    if upsample > 1:
        layers.append(CausalConvTranspose1d(channels, channels, upsample))
    layers += [ConvNeXtBlock(channels, expansion) for _ in range(blocks_high)]
    layers.append(ISTFTHead(channels, n_fft, hop))
    return StreamSequential(*layers)
