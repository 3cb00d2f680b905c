"""Recipes: what the shared trainer needs to know about one kind of neural codec.

A recipe builds the generator (the codec model) and its discriminator, runs the generator on a
batch (returning the reconstruction and any model-specific losses), initialises what needs data
(codebooks) and exports the inference weights. The trainer (train.py) owns everything else:
data, reconstruction and adversarial losses, optimisers, mixed precision, checkpoints, logs.
New neural codecs add a recipe to RECIPES.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .losses import MultiScaleSTFTDiscriminator
from .model import RVQCodecModel, RVQConfig, save_inference

__all__ = ["Recipe", "RVQRecipe", "RECIPES"]


class Recipe:
    """Base recipe; subclasses set `model`, `discriminator` and `sample_rate`."""

    model: torch.nn.Module
    discriminator: torch.nn.Module | None
    sample_rate: int
    hop: int = 1  # crops are trimmed to a multiple of this

    def initialise(self, batch: torch.Tensor) -> None:
        """Data-dependent initialisation before the first step (default: none)."""

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def export(self, path: Path) -> Path:
        raise NotImplementedError


class RVQRecipe(Recipe):
    """The RVQ autoencoder (model.py) with a multi-scale STFT discriminator."""

    def __init__(self, model_params: dict, discriminator_params: dict | None = None):
        self.config = RVQConfig.from_dict(model_params)
        self.model = RVQCodecModel(self.config)
        self.discriminator = MultiScaleSTFTDiscriminator(**(discriminator_params or {}))
        self.sample_rate, self.hop = self.config.sample_rate, self.config.hop

    def initialise(self, batch):
        self.model.initialise_codebooks(batch)

    def forward(self, batch):
        reconstruction, _, commitment = self.model(batch)
        return reconstruction, {"commit": commitment}

    def export(self, path):
        return save_inference(self.model, path)


RECIPES = {"rvq": RVQRecipe}

from ..lpcnet.recipe import FramewiseRecipe, SampleRateRecipe  # noqa: E402

RECIPES["lpcnet-framewise"] = FramewiseRecipe
RECIPES["lpcnet-samplerate"] = SampleRateRecipe
