"""Training recipes of the latent diffusion codec, for the shared trainer (train.py).

* `autoencoder`: the continuous autoencoder (ladiff.py); no discriminator; its losses are the
  trainer's `sisnr` (negative SI-SDR) and `mel` terms, weighted in the config.
* `ladiff`: the conditional latent diffusion model on a frozen RVQ codec (the codes) and a frozen
  autoencoder (the latents): epsilon-prediction L1 ("diff") plus the condition's L1 against the
  scaled latent ("cond"); no waveform losses. Each example is coded at a codebook count drawn
  from `n_q_choices`, so one model serves those bitrates. `latent_scale` is set before the first
  step to 1 / SD of the latents of a batch of training audio.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .ladiff import (
    AEConfig,
    ContinuousAE,
    DiffusionConfig,
    LatentDiffusion,
    codes_fingerprint,
    load_autoencoder,
    save_autoencoder,
    save_ladiff,
)
from .model import load_inference
from .recipe_base import Recipe

__all__ = ["AutoencoderRecipe", "LaDiffRecipe"]


class AutoencoderRecipe(Recipe):
    """The continuous SEANet autoencoder (no quantizer). `init: WEIGHTS` starts from a trained one and
    `freeze_encoder: true` then trains its decoder alone: the latents, which the diffusion model learns,
    stay the same, so the decoder can improve while the diffusion model trains."""

    def __init__(self, model_params: dict, discriminator_params: dict | None = None):
        params = dict(model_params)
        init, self.frozen = params.pop("init", None), bool(params.pop("freeze_encoder", False))
        if (init and params) or (self.frozen and not init):
            raise ConfigError("autoencoder recipe: init takes no architecture keys; freeze_encoder needs init")
        self.model = load_autoencoder(init).train() if init else ContinuousAE(AEConfig.from_dict(params))
        self.config = self.model.config
        for parameter in self.model.encoder.parameters():
            parameter.requires_grad_(not self.frozen)
        self.discriminator = None
        self.sample_rate, self.hop = self.config.sample_rate, self.config.hop

    def forward(self, batch):
        if self.frozen:
            with torch.no_grad():
                latents = self.model.encoder(batch)
            return self.model.decoder(latents), {}
        return self.model(batch), {}

    def export(self, path):
        return save_autoencoder(self.model, path)


class LaDiffRecipe(Recipe):
    """Latent diffusion conditioned on RVQ codes; `model` holds `rvq_weights`, `autoencoder_weights`,
    `n_q_choices`, optionally `decoder_weights` (see _decoding_autoencoder) and DiffusionConfig's keys."""

    waveform_losses = False
    loss_weights = {"diff": 1.0, "cond": 1.0}

    def __init__(self, model_params: dict, discriminator_params: dict | None = None):
        params = dict(model_params)
        try:
            rvq_path, ae_path = params.pop("rvq_weights"), params.pop("autoencoder_weights")
        except KeyError as err:
            raise ConfigError(f"ladiff recipe: model needs {err.args[0]} (a trained weights file)") from None
        self.n_q_choices = tuple(params.pop("n_q_choices", (3, 6)))
        self.decoder_path = params.pop("decoder_weights", None)
        self.rvq, self.autoencoder = load_inference(rvq_path), load_autoencoder(ae_path)
        self.rvq_codes = codes_fingerprint(self.rvq)
        self.model = LatentDiffusion(DiffusionConfig.from_dict(params))
        self._check_shapes()
        self.discriminator = None
        self.sample_rate, self.hop = self.rvq.config.sample_rate, self.rvq.config.hop

    def _check_shapes(self) -> None:
        rvq, ae, config = self.rvq.config, self.autoencoder.config, self.model.config
        if (
            ae.hop * self.model.rate_ratio != rvq.hop
            or ae.latent_dim != config.latent_dim
            or rvq.latent_dim != config.code_dim
        ):
            raise ConfigError(
                f"ladiff recipe: autoencoder hop {ae.hop} x {self.model.rate_ratio} must equal the rvq hop "
                f"{rvq.hop}, and latent_dim/code_dim must match the two models"
            )
        if not set(self.n_q_choices) <= set(range(1, min(rvq.n_q, self.model.config.max_n_q) + 1)):
            raise ConfigError(f"ladiff recipe: n_q_choices {self.n_q_choices} must be codebook counts of the rvq model")

    @torch.no_grad()
    def initialise(self, batch):
        latents = self.autoencoder.to(batch.device).encoder(batch)
        self.model.latent_scale.fill_(1.0 / float(latents.std().clamp_min(1e-6)))

    def forward(self, batch):
        latents, quantised, n_q = self._inputs(batch)
        return batch, self.model.loss(latents, quantised, n_q)

    @torch.no_grad()
    def _inputs(self, batch):
        """(autoencoder latents, quantised code latents, codebook counts) of a batch, from the frozen models."""
        self.rvq.to(batch.device).eval()
        latents = self.autoencoder.to(batch.device).eval().encoder(batch)
        codes = self.rvq.encode(batch, max(self.n_q_choices))
        pick = torch.randint(len(self.n_q_choices), (len(batch),))
        n_q = torch.tensor([self.n_q_choices[int(i)] for i in pick], device=batch.device)
        quantised = torch.cat([self.rvq.quantizer.decode(codes[i : i + 1, :n]) for i, n in enumerate(n_q.tolist())])
        return latents, quantised, n_q

    def export(self, path):
        return save_ladiff(self.model, self._decoding_autoencoder(), self.rvq_codes, path)

    def _decoding_autoencoder(self) -> ContinuousAE:
        """The autoencoder whose decoder ships: `decoder_weights` (a later decoder-only stage, its encoder
        identical to the one the latents came from) or the training one."""
        if not self.decoder_path:
            return self.autoencoder
        later = load_autoencoder(self.decoder_path)
        mine, theirs = self.autoencoder.encoder.state_dict(), later.encoder.state_dict()
        if mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k]) for k in mine):
            raise ConfigError(
                f"ladiff recipe: {self.decoder_path} has another encoder than autoencoder_weights; "
                "its decoder would not fit the latents"
            )
        return later
