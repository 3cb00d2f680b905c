"""The base of training recipes (recipes.py): what the shared trainer (train.py) asks of a neural codec."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["Recipe"]


class Recipe:
    """Base recipe; subclasses set `model`, `discriminator` and `sample_rate`."""

    model: torch.nn.Module
    discriminator: torch.nn.Module | None
    sample_rate: int
    hop: int = 1  # crops are trimmed to a multiple of this
    waveform_losses: bool = True  # False: the trainer adds no reconstruction losses, only the recipe's own

    def initialise(self, batch: torch.Tensor) -> None:
        """Data-dependent initialisation before the first step (default: none)."""

    def align(self, reconstruction: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, target) the losses compare; a decoder whose output lags its input trims both here."""
        return reconstruction, batch

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def export(self, path: Path) -> Path:
        raise NotImplementedError
