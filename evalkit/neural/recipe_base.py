"""The base of training recipes (recipes.py): what the shared trainer (train.py) asks of a neural codec."""

from __future__ import annotations

from pathlib import Path

import torch

from ..registry import Registry

__all__ = ["Recipe", "RECIPES"]


class Recipe:
    """Base recipe; subclasses set `model`, `discriminator` and `sample_rate`."""

    model: torch.nn.Module
    discriminator: torch.nn.Module | None
    sample_rate: int
    hop: int = 1  # crops are trimmed to a multiple of this
    waveform_losses: bool = True  # False: the trainer adds no reconstruction losses, only the recipe's own
    # The default weights of the loss terms `forward` returns beyond the trainer's own; a training
    # config's `losses:` section may then set them (a term without a weight counts once).
    loss_weights: dict[str, float] = {}

    def initialise(self, batch: torch.Tensor) -> None:
        """Data-dependent initialisation before the first step (default: none)."""

    def align(self, reconstruction: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, target) the losses compare; a decoder whose output lags its input trims both here."""
        return reconstruction, batch

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def export(self, path: Path) -> Path:
        raise NotImplementedError


# Recipe classes by name (training configs' `recipe:`), declared in pyproject.toml's entry-point
# group "evalkit.recipes" (plug-ins add theirs the same way).
RECIPES: Registry[type[Recipe]] = Registry("training recipe", "evalkit.recipes", has_builtins=True)
