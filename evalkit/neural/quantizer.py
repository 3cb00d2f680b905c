"""Residual vector quantisation with EMA codebooks, k-means initialisation, dead-code restarts
and quantizer dropout (SoundStream / EnCodec style).

Codebooks are buffers, not parameters: each is the exponential moving average of the vectors
assigned to it (no codebook gradient), which trains stably with small batches. A code whose
usage average falls below `dead_fraction` of the uniform share is restarted on a random vector
of the current batch. Quantizer dropout: during training each example keeps only its first
n_q codebooks, n_q drawn from `dropout_choices`, so one model serves every bitrate that uses a
prefix of the codebooks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EMAQuantizer", "ResidualVQ", "kmeans"]


def kmeans(x: torch.Tensor, k: int, iterations: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
    """k centroids of rows of x (Lloyd); empty clusters keep their previous centroid."""
    pick = (
        torch.randint(len(x), (k,), generator=generator)
        if len(x) < k
        else torch.randperm(len(x), generator=generator)[:k]
    )
    centroids = x[pick].clone()
    for _ in range(iterations):
        assign = torch.cdist(x, centroids).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


class EMAQuantizer(nn.Module):
    """One codebook of `size` vectors of `dim`, updated by EMA in training."""

    def __init__(self, dim: int, size: int, decay: float = 0.99, dead_fraction: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.size, self.decay, self.dead_fraction, self.eps = size, decay, dead_fraction, eps
        self.register_buffer("codebook", torch.randn(size, dim) * 0.1)
        self.register_buffer("usage", torch.ones(size))  # EMA of assignments per step
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialised", torch.tensor(False))

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of x (N, dim)."""
        book = self.codebook
        dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ book.t() + book.pow(2).sum(1)[None]
        return dist.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.codebook)

    @torch.no_grad()
    def initialise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """k-means on x (N, dim); the EMA statistics start from the result."""
        centroids = kmeans(x.float(), self.size, generator=generator)
        self.codebook.copy_(centroids)
        self.embed_sum.copy_(centroids)
        self.usage.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step on the batch's assignments, then restart dead codes."""
        onehot_counts = torch.bincount(codes, minlength=self.size).to(x.dtype)
        sums = torch.zeros_like(self.codebook).index_add_(0, codes, x)
        share = len(x) / self.size  # expected assignments per code per step if usage were uniform
        self.usage.mul_(self.decay).add_(onehot_counts / share, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums / share, alpha=1 - self.decay)
        self.codebook.copy_(self.embed_sum / (self.usage[:, None] + self.eps))
        self._restart_dead(x)

    def _restart_dead(self, x: torch.Tensor) -> None:
        dead = self.usage < self.dead_fraction
        count = int(dead.sum())
        if count == 0:
            return
        fresh = x[torch.randint(len(x), (count,), device=x.device)]
        self.codebook[dead] = fresh
        self.embed_sum[dead] = fresh
        self.usage[dead] = 1.0


class ResidualVQ(nn.Module):
    """`n_q` EMA quantizers applied to successive residuals of latents shaped (B, dim, T)."""

    def __init__(self, dim: int, n_q: int, size: int, dropout_choices: tuple[int, ...] = (), **kwargs):
        super().__init__()
        self.layers = nn.ModuleList(EMAQuantizer(dim, size, **kwargs) for _ in range(n_q))
        self.dropout_choices = tuple(dropout_choices) or tuple(range(1, n_q + 1))

    @property
    def n_q(self) -> int:
        return len(self.layers)

    def forward(self, z: torch.Tensor, n_q: int | None = None):
        """(quantised z with straight-through gradient, codes (B, n_q, T), commitment loss).

        In training, all codebooks see (and learn from) every residual, but each example's
        output sums only its own first n_q codes (quantizer dropout) unless n_q is given."""
        flat = z.float().transpose(1, 2).reshape(-1, z.shape[1])
        keep = self._keep_mask(z.shape[0], z.shape[2], n_q, z.device)
        residual, out, codes = flat, torch.zeros_like(flat), []
        for index, layer in enumerate(self.layers[: self._active(n_q)]):
            code = layer.nearest(residual)
            quantised = layer.lookup(code)
            if self.training:
                layer.update(residual, code)
            out = out + quantised * keep[:, index : index + 1]
            residual = residual - quantised
            codes.append(code)
        zq = out.reshape(z.shape[0], z.shape[2], -1).transpose(1, 2)
        commitment = F.mse_loss(z.float(), zq.detach())
        codes = torch.stack(codes, dim=1).reshape(z.shape[0], z.shape[2], -1).transpose(1, 2)
        return (z + (zq - z).detach()).to(z.dtype), codes, commitment

    def encode(self, z: torch.Tensor, n_q: int) -> torch.Tensor:
        """Codes (B, n_q, T) of latents (B, dim, T)."""
        flat = z.float().transpose(1, 2).reshape(-1, z.shape[1])
        codes = []
        for layer in self.layers[:n_q]:
            code = layer.nearest(flat)
            flat = flat - layer.lookup(code)
            codes.append(code)
        return torch.stack(codes, dim=1).reshape(z.shape[0], z.shape[2], n_q).transpose(1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents (B, dim, T) from codes (B, n_q, T)."""
        out = sum(layer.lookup(codes[:, i]) for i, layer in enumerate(self.layers[: codes.shape[1]]))
        return out.transpose(1, 2)

    @torch.no_grad()
    def initialise(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """k-means every codebook in turn on the residual the previous ones leave."""
        residual = z.float().transpose(1, 2).reshape(-1, z.shape[1])
        for layer in self.layers:
            layer.initialise(residual, generator)
            residual = residual - layer.lookup(layer.nearest(residual))

    def _active(self, n_q: int | None) -> int:
        return self.n_q if n_q is None or self.training else n_q

    def _keep_mask(self, batch: int, frames: int, n_q: int | None, device) -> torch.Tensor:
        """(B * T, n_q) 0/1 weights: which codebooks each example's output uses."""
        if n_q is not None or not self.training:
            limit = torch.full((batch,), n_q or self.n_q, device=device)
        else:
            choices = torch.tensor(self.dropout_choices, device=device)
            limit = choices[torch.randint(len(choices), (batch,), device=device)]
        keep = (torch.arange(self.n_q, device=device)[None] < limit[:, None]).float()
        return keep.repeat_interleave(frames, dim=0)
