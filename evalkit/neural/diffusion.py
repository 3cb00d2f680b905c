"""Gaussian diffusion in a latent space: cosine noise schedule, epsilon-prediction, DDPM/DDIM sampling
from noise, and LaDiffCodec's midway infilling (Yang, Jang & Kim, ICASSP 2024).

Times are integers t = 0..T (T = 1000); t = 0 is clean data and q(x_t | x_0) = N(sqrt(abar_t) x_0,
(1 - abar_t) I) with abar_t from the cosine schedule (Nichol & Dhariwal 2021; betas clipped at
0.999). The network predicts the noise epsilon. A reverse step from t to s < t is the generalised
DDIM update (Song et al. 2021): eta = 0 is deterministic DDIM, eta = 1 the ancestral DDPM step
(over strided times, "respaced"). All randomness comes from a torch.Generator the caller seeds.

Midway infilling: instead of pure noise at t = T, the reverse process starts from the condition
(the codes' upsampled, normalised estimate of the latent) taken as x_{midway_t}, and runs from
there to t = 0, optionally blending each x_s towards the condition's mean at that time,
sqrt(abar_s) * cond, by `lam` (0: no blending).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["CosineSchedule", "sampling_times", "reverse_step", "sample"]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t as a (B,) long tensor) -> eps


class CosineSchedule:
    """abar_t for t = 0..T (abar_0 = 1), float64 for the arithmetic, as a cosine schedule."""

    def __init__(self, steps: int = 1000, offset: float = 0.008, max_beta: float = 0.999):
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
        self.steps = steps
        self.abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])

    def _at(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.abar.to(like.device)[t].to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, t a (B,) long tensor."""
        abar = self._at(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        abar = self._at(t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def sampling_times(start: int, evaluations: int) -> list[int]:
    """`evaluations` distinct integer times from `start` down to 1, evenly spaced (then t = 0)."""
    evaluations = max(0, min(int(evaluations), int(start)))
    if evaluations == 0:
        return [0]
    times = torch.linspace(start, 0, evaluations + 1).round().long().tolist()
    return sorted(set(times), reverse=True)


def reverse_step(
    schedule: CosineSchedule,
    denoise: Denoiser,
    x: torch.Tensor,
    t: int,
    s: int,
    eta: float,
    generator: torch.Generator | None,
    clip: float = 0.0,
) -> torch.Tensor:
    """x_s from x_t (s < t) by the generalised DDIM update; x_0 is the predicted clean latent, clamped to
    [-clip, clip] when clip > 0 (near t = T, where abar_t is tiny, a small error in eps is a huge one in x_0)."""
    batch_t = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    eps = denoise(x, batch_t)
    x0 = schedule.predict_x0(x, batch_t, eps)
    a_t, a_s = float(schedule.abar[t]), float(schedule.abar[s])
    if clip > 0:
        x0 = x0.clamp(-clip, clip)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
    if s == 0:
        return x0
    sigma = eta * math.sqrt((1 - a_s) / (1 - a_t) * (1 - a_t / a_s))
    out = math.sqrt(a_s) * x0 + math.sqrt(max(1 - a_s - sigma**2, 0.0)) * eps
    if sigma > 0:
        out = out + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return out


def sample(
    schedule: CosineSchedule,
    denoise: Denoiser,
    condition: torch.Tensor,
    evaluations: int,
    eta: float = 0.0,
    midway_t: int | None = None,
    lam: float = 0.0,
    generator: torch.Generator | None = None,
    clip: float = 0.0,
) -> torch.Tensor:
    """A clean latent shaped like `condition` after `evaluations` network calls.

    midway_t None: start from N(0, I) at t = T. midway_t = m: start from the condition itself as
    x_m (m = 0 returns it unchanged). lam > 0 blends each intermediate x_s towards sqrt(abar_s) cond.
    """
    if midway_t is None:
        start = schedule.steps
        x = torch.randn(condition.shape, generator=generator, dtype=condition.dtype).to(condition.device)
    else:
        start, x = int(midway_t), condition.clone()
    times = sampling_times(start, evaluations)
    for t, s in zip(times, times[1:]):
        x = reverse_step(schedule, denoise, x, t, s, eta, generator, clip)
        if lam:
            x = (1 - lam) * x + lam * math.sqrt(float(schedule.abar[s])) * condition
    return x
