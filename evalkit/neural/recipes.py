"""Recipes: what the shared trainer needs to know about one kind of neural codec.

A recipe builds the generator (the codec model) and its discriminator, runs the generator on a
batch (returning the reconstruction and any model-specific losses), initialises what needs data
(codebooks) and exports the inference weights. The trainer (train.py) owns everything else:
data, reconstruction and adversarial losses, optimisers, mixed precision, checkpoints, logs.
New neural codecs add a Recipe subclass (recipe_base.py) and name it in pyproject.toml's entry-point
group "evalkit.recipes"; docs/contributing.md shows how.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, first_line
from .losses import MultiScaleSTFTDiscriminator
from .model import RVQCodecModel, RVQConfig, load_inference, save_inference
from .recipe_base import Recipe

__all__ = ["Recipe", "RVQRecipe"]


class RVQRecipe(Recipe):
    """The RVQ autoencoder (model.py) with a multi-scale STFT discriminator.

    `model` holds RVQConfig's keys, or `init: WEIGHTS` to start from trained inference weights;
    `freeze_encoder: true` then trains the decoder alone on the frozen encoder's codes (codebooks
    fixed too, quantizer dropout kept), so codes from the init weights stay valid.
    `init_encoder: WEIGHTS` starts a new model's encoder and codebooks from another model's (same
    encoder architecture), e.g. to give a new decoder an already trained latent space.
    """

    def __init__(self, model_params: dict, discriminator_params: dict | None = None):
        params = dict(model_params)
        init, self.frozen = params.pop("init", None), bool(params.pop("freeze_encoder", False))
        init_encoder = params.pop("init_encoder", None)
        if init and params:
            raise ConfigError(f"rvq recipe: with init the architecture comes from {init}; drop {sorted(params)}")
        if self.frozen and not init:
            raise ConfigError("rvq recipe: freeze_encoder needs init (trained weights to freeze)")
        self.model = _trainable(load_inference(init)) if init else RVQCodecModel(RVQConfig.from_dict(params))
        if init_encoder:
            _copy_encoder(load_inference(init_encoder), self.model, init_encoder)
        self.config = self.model.config
        for parameter in self.model.encoder.parameters():
            parameter.requires_grad_(not self.frozen)
        self.discriminator = MultiScaleSTFTDiscriminator(**(discriminator_params or {}))
        self.sample_rate, self.hop = self.config.sample_rate, self.config.hop

    def initialise(self, batch):
        if not self.model.quantizer.layers[0].initialised:
            self.model.initialise_codebooks(batch)

    def forward(self, batch):
        if self.frozen:
            return self.model.decoder(self._frozen_latents(batch)), {}
        reconstruction, _, commitment = self.model(batch)
        return reconstruction, {"commit": commitment}

    @torch.no_grad()
    def _frozen_latents(self, batch):
        """Quantised latents of the frozen encoder, each example at a codebook count from dropout_choices."""
        quantizer = self.model.quantizer.eval()
        codes = self.model.encode(batch, quantizer.n_q)
        choices = quantizer.dropout_choices
        counts = [choices[int(i)] for i in torch.randint(len(choices), (len(batch),))]
        return torch.cat([quantizer.decode(codes[i : i + 1, :n]) for i, n in enumerate(counts)])

    def align(self, reconstruction, batch):
        lag = self.config.lookahead
        if not lag:
            return reconstruction, batch
        return reconstruction[..., lag:], batch[..., : batch.shape[-1] - lag]

    def export(self, path):
        return save_inference(self.model, path)


def _copy_encoder(source: RVQCodecModel, target: RVQCodecModel, name: str) -> None:
    """Encoder weights and codebooks of `source` into `target` (EMA statistics restarted)."""
    try:
        target.encoder.load_state_dict(source.encoder.state_dict())
        for mine, theirs in zip(target.quantizer.layers, source.quantizer.layers, strict=True):
            mine.codebook.copy_(theirs.codebook)
            mine.initialised.fill_(True)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"rvq recipe: init_encoder {name} does not match this encoder ({first_line(err)})") from None
    _trainable(target)


def _trainable(model: RVQCodecModel) -> RVQCodecModel:
    """Inference weights ready to train on: the EMA statistics (not exported) restart from the codebooks."""
    for layer in model.quantizer.layers:
        layer.embed_sum.copy_(layer.codebook)
        layer.usage.fill_(1.0)
    return model.train()
