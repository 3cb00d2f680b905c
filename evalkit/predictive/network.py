"""The frame predictor as a torch module, for training (predictor.py runs it in numpy for coding)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .predictor import NB_CEPSTRA, PredictorConfig

__all__ = ["FramePredictor", "predictor_arrays"]


class FramePredictor(nn.Module):
    """Predictions of frames 1..T from (reconstructed) frames 0..T-1, as changes scaled by the deviation."""

    def __init__(self, config: PredictorConfig | None = None):
        super().__init__()
        self.config = config = config or PredictorConfig()
        self.register_buffer("mean", torch.zeros(NB_CEPSTRA))
        self.register_buffer("std", torch.ones(NB_CEPSTRA))
        self.gru1 = nn.GRU(NB_CEPSTRA, config.hidden1, batch_first=True)
        self.gru2 = nn.GRU(config.hidden1, config.hidden2, batch_first=True)
        self.dense = nn.Linear(config.hidden2, config.dense)
        self.out = nn.Linear(config.dense, NB_CEPSTRA)

    def forward(self, previous: torch.Tensor, state=None):
        """(predictions (B, T, 18), state) from previous frames (B, T, 18) and an optional state."""
        h1, h2 = state if state is not None else (None, None)
        x = (previous - self.mean) / self.std
        y1, h1 = self.gru1(x, h1)
        y2, h2 = self.gru2(y1, h2)
        change = self.out(torch.tanh(self.dense(y2)))
        return previous + change * self.std, (h1, h2)


def predictor_arrays(model: FramePredictor) -> dict[str, np.ndarray]:
    """The model's parameters and buffers as float32 arrays, named as torch names them."""
    return {name: tensor.detach().cpu().numpy().astype(np.float32) for name, tensor in model.state_dict().items()}


class TorchQuantizer:
    """residual.ResidualQuantizer's arithmetic on batches, in torch (training only: scheduled sampling
    and closed-loop statistics); thresholds may differ per row."""

    def __init__(self, books, device="cpu"):
        self.books = {
            name: torch.as_tensor(np.asarray(getattr(books, name)), dtype=torch.float32, device=device)
            for name in ("c0_fine", "c0_coarse", "vq1", "vq2", "vq_small")
        }

    def __call__(self, residual: torch.Tensor, c0_threshold: torch.Tensor, vq_threshold: torch.Tensor):
        """(quantized residual (B, 18), fine c0 flags (B,), fine VQ flags (B,))."""
        b = self.books
        r0, shape = residual[:, 0], residual[:, 1:]
        fine0 = r0.abs() > c0_threshold
        q0 = torch.where(fine0, _nearest_level(b["c0_fine"], r0), _nearest_level(b["c0_coarse"], r0))
        first = b["vq1"][_nearest_row(b["vq1"], shape)]
        two_stage = first + b["vq2"][_nearest_row(b["vq2"], shape - first)]
        small = b["vq_small"][_nearest_row(b["vq_small"], shape)]
        fine1 = shape.abs().sum(dim=1) > vq_threshold
        q_shape = torch.where(fine1[:, None], two_stage, small)
        return torch.cat([q0[:, None], q_shape], dim=1), fine0, fine1


def _nearest_level(levels: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return levels[(values[:, None] - levels[None, :]).abs().argmin(dim=1)]


def _nearest_row(book: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return ((book * book).sum(dim=1)[None, :] - 2.0 * vectors @ book.T).argmin(dim=1)
