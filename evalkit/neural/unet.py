"""The denoiser of the latent diffusion codec: a 1-D U-Net over latent frames, and the learned upsampler
that turns the codes' quantised latents into its condition.

U-Net: input [x_t ; condition] concatenated on channels; residual blocks (SiLU, convolutions, the
time + bitrate embedding added between them) at each level, strided-convolution downsampling by 2,
transposed-convolution upsampling with skip connections; no normalisation over time, so the
output at a frame depends on a bounded neighbourhood only (chunked decoding relies on it); the
output convolution starts at zero. Upsampler: transposed convolutions (x2 each) with a residual
block after each, from the discrete codec's frame rate to the latent rate.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNet1D", "ConditionUpsampler", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of integer times (B,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """x + conv(silu(conv(silu(x)) + emb)), a 1x1 projection when the width changes."""

    def __init__(self, cin: int, cout: int, emb_dim: int = 0, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout) if emb_dim else None
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb=None):
        h = self.conv1(F.silu(x))
        if self.emb is not None:
            h = h + self.emb(emb)[:, :, None]
        return self.skip(x) + self.conv2(F.silu(h))


class ConditionUpsampler(nn.Module):
    """Quantised latents (B, cin, frames) -> (B, cout, frames * 2**len(...)) by learned transposed convs."""

    def __init__(self, cin: int, cout: int, channels: int, factors: int):
        super().__init__()
        self.inp = nn.Conv1d(cin, channels, 3, padding=1)
        self.ups = nn.ModuleList(nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1) for _ in range(factors))
        self.blocks = nn.ModuleList(ResBlock(channels, channels) for _ in range(factors))
        self.out = nn.Conv1d(channels, cout, 3, padding=1)

    def forward(self, z):
        h = self.inp(z)
        for up, block in zip(self.ups, self.blocks):
            h = block(up(F.silu(h)))
        return self.out(F.silu(h))


class UNet1D(nn.Module):
    """eps(x_t, t, condition, n_q) for latents (B, channels, L); L a multiple of 2**(levels - 1)."""

    def __init__(
        self,
        channels: int,
        widths: tuple[int, ...],
        blocks: int = 2,
        emb_dim: int = 128,
        n_q_choices: int = 16,
        mid_dilations: tuple[int, ...] = (1, 2, 4, 8),
    ):
        super().__init__()
        self.emb_dim = emb_dim
        self.time = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.n_q_embedding = nn.Embedding(n_q_choices + 1, emb_dim)
        self.inp = nn.Conv1d(2 * channels, widths[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for level, width in enumerate(widths):
            cin = widths[max(level - 1, 0)]
            self.down.append(nn.ModuleList(ResBlock(cin if i == 0 else width, width, emb_dim) for i in range(blocks)))
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv1d(width, width, 4, stride=2, padding=1))
        self.mid = nn.ModuleList(ResBlock(widths[-1], widths[-1], emb_dim, d) for d in mid_dilations)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in range(len(widths) - 1, -1, -1):
            width = widths[level]
            self.up.append(nn.ModuleList(ResBlock((2 if i == 0 else 1) * width, width, emb_dim) for i in range(blocks)))
            if level > 0:
                self.upsample.append(nn.ConvTranspose1d(width, widths[level - 1], 4, stride=2, padding=1))
        self.out = nn.Conv1d(widths[0], channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        return 2 ** len(self.downsample)

    def forward(self, x, t, condition, n_q):
        emb = self.time(timestep_embedding(t, self.emb_dim)) + self.n_q_embedding(n_q)
        h = self.inp(torch.cat([x, condition], dim=1))
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        for block in self.mid:
            h = block(h, emb)
        for level, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
            if level < len(self.upsample):
                h = self.upsample[level](h)
        return self.out(F.silu(h))
