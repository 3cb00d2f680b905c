"""The training loop shared by evalkit's neural codecs: `evalkit train CONFIG.yaml`.

A YAML config names a recipe (recipes.py), the data (data.py), the model parameters, the
optimiser, the loss weights and the run settings. The loop is seeded; it checkpoints every
`checkpoint_every` steps (atomically) and resumes from run_dir/checkpoint.pt; it stops at
`steps` or after `max_minutes` of wall-clock training time (resumed runs included), whichever
comes first, and then exports the inference weights (run_dir/model.pt, or `export`) and prints
their sha256. Ctrl-C or SIGTERM stops it after the step in progress, with a checkpoint at that
step. It runs on the GPU when one is present (device: auto), with bf16 autocast there (fp16 with
a gradient scaler where bf16 is missing), and on the CPU in float32.

Losses: weighted waveform L1, multi-resolution STFT, multi-scale mel and the recipe's own
(commitment); from step `adversarial_start`, a hinge adversarial loss and feature matching
against the recipe's discriminator, which trains in alternation with the generator.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..cache import file_digest
from ..config import Checker, describe, read_document
from ..errors import ConfigError
from .data import CropSampler, DataConfig
from .losses import (
    MelLoss,
    MultiResolutionSTFTLoss,
    feature_matching_loss,
    generator_adversarial_loss,
    hinge_discriminator_loss,
    negative_si_snr,
)
from .recipe_base import RECIPES

__all__ = ["TrainConfig", "Trainer", "train", "pick_device"]

TRAIN_FORMAT = "evalkit-train-1"
_LOSS_DEFAULTS = {
    "l1": 1.0,
    "sisnr": 0.0,
    "stft": 1.0,
    "mel": 1.0,
    "commit": 0.25,
    "adversarial": 1.0,
    "feature": 2.0,
    "adversarial_start": 0,
}
_OPTIM_DEFAULTS = {
    "lr": 1e-3,
    "betas": [0.8, 0.99],
    "batch_size": 8,
    "steps": 1000,
    "warmup_steps": 50,
    "final_lr_fraction": 0.1,
    "grad_clip": 10.0,
    "disc_lr": 3e-4,
    "schedule_by_time": False,
}
_RUN_DEFAULTS = {
    "max_minutes": 25.0,
    "log_every": 25,
    "checkpoint_every": 100,
    "device": "auto",
    "amp": "auto",
    "threads": 0,
    "resume": True,
}
_AMP = ("auto", "off", "bf16", "fp16")


@dataclass
class TrainConfig:
    recipe: str
    run_dir: Path
    data: DataConfig
    model: dict = field(default_factory=dict)
    discriminator: dict = field(default_factory=dict)
    optim: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    seed: int = 0
    export: Path | None = None

    @classmethod
    def load(cls, source: str | Path | dict, base: Path | None = None) -> TrainConfig:
        """From a YAML file (paths relative to the current folder) or a dict like it; every value
        is checked before anything is built (one-line errors naming the file, line and key)."""
        if isinstance(source, dict):
            data, check = source, Checker("training config")
        else:
            document = read_document(Path(source), "training config")
            data, check = document.data, document.checker()
        base = base or Path(".")
        allowed = {"recipe", "run_dir", "data", "model", "discriminator", "optim", "losses", "run", "seed", "export"}
        check.mapping(data, "", allowed, required=("recipe", "data"))
        recipe = check.choice(data["recipe"], "recipe", tuple(sorted(RECIPES)))
        paths = {
            key: check.text(data[key], key, required=True) for key in ("run_dir", "export") if data.get(key) is not None
        }
        for key in ("model", "discriminator"):
            if data.get(key) is not None:
                check.mapping(data[key], key, set(map(str, data[key])) if isinstance(data[key], dict) else set())
        return cls(
            recipe=recipe,
            run_dir=base / paths.get("run_dir", f"results/train/{recipe}"),
            data=DataConfig.from_dict(data["data"], base, check),
            model=data.get("model") or {},
            discriminator=data.get("discriminator") or {},
            optim=_merged(check, "optim", _OPTIM_DEFAULTS, data.get("optim")),
            losses=_merged(check, "losses", {**_LOSS_DEFAULTS, **RECIPES.get(recipe).loss_weights}, data.get("losses")),
            run=_merged(check, "run", _RUN_DEFAULTS, data.get("run")),
            seed=check.integer(data.get("seed", 0), "seed", 0, 2**32 - 1),
            export=base / paths["export"] if "export" in paths else None,
        )


def _merged(check: Checker, section: str, defaults: dict, given: dict | None) -> dict:
    """The section's defaults updated by what the file gives, each value of its default's kind."""
    given = {} if given is None else check.mapping(given, section, set(defaults))
    for key, value in given.items():
        _check_like(check, f"{section}.{key}", value, defaults[key])
    if section == "run":
        check.choice(given.get("amp", "auto"), "run.amp", _AMP)
    return {**defaults, **given}


def _check_like(check: Checker, key: str, value, default) -> None:
    """Booleans, whole numbers, non-negative numbers, strings and number lists, as the default is."""
    if isinstance(default, bool):
        check.boolean(value, key)
    elif isinstance(default, int):
        check.integer(value, key, 0, 2**62)
    elif isinstance(default, float):
        check.number(value, key, low=0.0)
    elif isinstance(default, str):
        check.text(value, key, required=True)
    elif isinstance(default, list):
        if not isinstance(value, list) or len(value) != len(default):
            check.fail(key, f"must be a list of {len(default)} numbers, got {describe(value)}")
        for index, entry in enumerate(value):
            check.number(entry, f"{key}[{index}]", low=0.0)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _amp_dtype(setting: str, device: torch.device):
    """None (float32), torch.bfloat16 or torch.float16 for autocast."""
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


class Trainer:
    """One training run: build, (resume,) loop, checkpoint, export."""

    def __init__(self, config: TrainConfig, log=None):
        self.config, self.log = config, log or partial(print, flush=True)
        run, optim = config.run, config.optim
        if run["threads"]:
            torch.set_num_threads(int(run["threads"]))
        torch.manual_seed(config.seed)
        self.device = pick_device(run["device"])
        self.amp = _amp_dtype(run["amp"], self.device)
        self.recipe = RECIPES.get(config.recipe)(config.model, config.discriminator)
        self.model = self.recipe.model.to(self.device)
        self.disc = self.recipe.discriminator.to(self.device) if self.recipe.discriminator is not None else None
        self.sampler = CropSampler(config.data, self.recipe.sample_rate, config.seed)
        self.opt_g = torch.optim.AdamW(self.model.parameters(), optim["lr"], betas=tuple(optim["betas"]))
        self.opt_d = (
            torch.optim.AdamW(self.disc.parameters(), optim["disc_lr"], betas=tuple(optim["betas"]))
            if self.disc
            else None
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.stft_loss, self.mel_loss = MultiResolutionSTFTLoss(), MelLoss(self.recipe.sample_rate)
        self.step, self.elapsed, self.started = 0, 0.0, time.monotonic()
        self.crop = self.sampler.crop - self.sampler.crop % self.recipe.hop

    # -- loop ----------------------------------------------------------------------------

    def run(self) -> Path:
        cfg = self.config.run
        if self.config.run_dir.exists() and not self.config.run_dir.is_dir():
            raise ConfigError(f"run_dir {self.config.run_dir} is a file; give a folder for checkpoints and logs")
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg["resume"] and self.checkpoint_path.is_file():
            self.load_checkpoint(self.checkpoint_path)
        if self.step == 0:
            self.recipe.initialise(self._batch(max(64, self.config.optim["batch_size"])))
        self._describe()
        self.started = start = last_log = time.monotonic()
        losses = []
        with _stop_requests() as stop_requested:
            while self.step < self.config.optim["steps"] and self.total_seconds() < 60 * cfg["max_minutes"]:
                losses.append(self.train_step(self._batch(self.config.optim["batch_size"])))
                if self.step % cfg["log_every"] == 0:
                    self._log_progress(losses, time.monotonic() - last_log, start)
                    losses, last_log = [], time.monotonic()
                if self.step % cfg["checkpoint_every"] == 0:
                    self.save_checkpoint(self.checkpoint_path, time.monotonic() - start)
                if stop_requested():
                    break
            if losses:
                self._log_progress(losses, time.monotonic() - last_log, start)
            self.save_checkpoint(self.checkpoint_path, time.monotonic() - start)
            if stop_requested():
                self.log(f"stopped at step {self.step}: checkpoint saved; the same command resumes from it")
                raise KeyboardInterrupt
        return self.export()

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        """One generator update (and one discriminator update once adversarial training is on)."""
        self.model.train()
        self._set_lr()
        adversarial = self.disc is not None and self.step >= self.config.losses["adversarial_start"]
        with self._autocast():
            reconstruction, extra = self.recipe.forward(batch)
        reconstruction, target = self.recipe.align(reconstruction.float(), batch)
        terms = self._reconstruction_terms(reconstruction, target, extra)
        if adversarial:
            terms.update(self._generator_adversarial_terms(reconstruction, target))
        total = sum(self.config.losses.get(name, 1.0) * value for name, value in terms.items())
        self._update(self.opt_g, self.model, total)
        if adversarial:
            terms["disc"] = self._discriminator_step(reconstruction.detach(), target)
        self.step += 1
        return {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def _reconstruction_terms(self, y_hat, y, extra) -> dict:
        if not self.recipe.waveform_losses:  # e.g. a diffusion model: its own loss only
            return dict(extra)
        losses = {
            "l1": lambda: (y_hat - y).abs().mean(),
            "stft": lambda: self.stft_loss(y_hat, y),
            "mel": lambda: self.mel_loss(y_hat, y),
            "sisnr": lambda: negative_si_snr(y_hat, y),
        }
        # a term weighted 0 is not computed (the STFTs are a good part of a CPU step)
        return {**{name: loss() for name, loss in losses.items() if self.config.losses[name]}, **extra}

    def _generator_adversarial_terms(self, y_hat, y) -> dict:
        with self._autocast():
            fake, real = self.disc(y_hat), self.disc(y)
        return {"adversarial": generator_adversarial_loss(fake), "feature": feature_matching_loss(real, fake)}

    def _discriminator_step(self, y_hat, y) -> torch.Tensor:
        with self._autocast():
            loss = hinge_discriminator_loss(self.disc(y), self.disc(y_hat))
        self._update(self.opt_d, self.disc, loss)
        return loss.detach()

    def _update(self, optimiser, module, loss) -> None:
        optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimiser)
        torch.nn.utils.clip_grad_norm_(module.parameters(), self.config.optim["grad_clip"])
        self.scaler.step(optimiser)
        self.scaler.update()

    def _set_lr(self) -> None:
        """Linear warm-up, then cosine decay to final_lr_fraction of lr at `steps` or, with
        `schedule_by_time`, at whichever comes first of `steps` and `max_minutes` (a wall-clock
        budget on a shared machine; the run is then seeded but its length depends on the load)."""
        o = self.config.optim
        if self.step < o["warmup_steps"]:
            scale = (self.step + 1) / o["warmup_steps"]
        else:
            progress = min(1.0, (self.step - o["warmup_steps"]) / max(1, o["steps"] - o["warmup_steps"]))
            if o["schedule_by_time"]:
                progress = max(progress, min(1.0, self.total_seconds() / (60 * self.config.run["max_minutes"])))
            scale = o["final_lr_fraction"] + (1 - o["final_lr_fraction"]) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in self.opt_g.param_groups:
            group["lr"] = o["lr"] * scale

    def total_seconds(self) -> float:
        """Wall-clock seconds of training so far, earlier invocations of a resumed run included."""
        return self.elapsed + time.monotonic() - self.started

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp) if self.amp is not None else nullcontext()

    def _batch(self, size: int) -> torch.Tensor:
        return torch.from_numpy(self.sampler.batch(size)[..., : self.crop]).to(self.device)

    # -- checkpoints and export -----------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.config.run_dir / "checkpoint.pt"

    def save_checkpoint(self, path: Path, session_seconds: float) -> None:
        state = {
            "format": TRAIN_FORMAT,
            "step": self.step,
            "elapsed": self.elapsed + session_seconds,
            "model": self.model.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "disc": self.disc.state_dict() if self.disc else {},
            "opt_d": self.opt_d.state_dict() if self.opt_d else {},
            "sampler": self.sampler.state(),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint

    def load_checkpoint(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # noqa: BLE001 - a truncated or foreign file is named, not a traceback
            raise ConfigError(
                f"{path}: cannot be read as a checkpoint ({type(err).__name__}); delete it to train from "
                "the start, or set run.resume: false"
            ) from None
        if not isinstance(state, dict) or state.get("format") != TRAIN_FORMAT:
            raise ConfigError(f"{path}: not an evalkit training checkpoint")
        self.model.load_state_dict(state["model"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.disc and state["disc"]:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.restore(state["sampler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.log(f"resumed from {path} at step {self.step}")

    def export(self) -> Path:
        path = self.recipe.export(self.config.export or self.config.run_dir / "model.pt")
        self.log(f"exported {path}: {path.stat().st_size / 1e6:.2f} MB, sha256 {file_digest(path)}")
        return path

    # -- logs ----------------------------------------------------------------------------

    def _describe(self) -> None:
        params = sum(p.numel() for p in self.model.parameters())
        self.log(
            f"recipe {self.config.recipe}: {params / 1e6:.2f} M parameters; data {self.sampler.seconds / 60:.1f} min "
            f"({len(self.sampler.lengths)} items); device {self.device}, amp {self.amp or 'off'}, "
            f"{torch.get_num_threads()} threads; step {self.step} of {self.config.optim['steps']}"
        )

    def _log_progress(self, losses: list[dict], seconds: float, start: float) -> None:
        mean = {k: float(np.mean([d[k] for d in losses if k in d])) for k in losses[-1]}
        rate = len(losses) / max(seconds, 1e-9)
        left = (self.config.optim["steps"] - self.step) / rate
        line = {
            "step": self.step,
            "steps_per_s": round(rate, 3),
            "elapsed_s": round(time.monotonic() - start, 1),
            **{k: round(v, 4) for k, v in mean.items()},
        }
        with open(self.config.run_dir / "log.jsonl", "a") as handle:
            handle.write(json.dumps(line) + "\n")
        terms = " ".join(f"{k} {v:.3f}" for k, v in mean.items())
        self.log(f"step {self.step}: {terms} | {rate:.2f} steps/s, {left / 60:.0f} min left at this rate")


@contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """Ctrl-C or SIGTERM (a scheduler ending the job) asks the loop to stop after the step in progress,
    so the checkpoint is saved at that step, not `checkpoint_every` steps back; a second one stops at
    once. Only the main thread can take signals: elsewhere nothing changes."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def ask(signum, _frame) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    ignored = [number for number in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(number) == signal.SIG_IGN]
    previous = {  # a signal ignored by whoever started us (nohup, a shell's background job) stays ignored
        number: signal.signal(number, ask) for number in (signal.SIGINT, signal.SIGTERM) if number not in ignored
    }
    try:
        yield lambda: bool(asked)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def train(config: str | Path | dict, steps: int | None = None, **run_overrides) -> Path:
    """Train from a config (YAML path or dict); `steps` and `run_overrides` (keys of its `run`
    section, e.g. max_minutes) replace the config's values when given."""
    cfg = TrainConfig.load(config)
    if not Path(cfg.data.train).exists():  # the newcomer's first run: say how the default set is made
        where = "" if isinstance(config, dict) else f"{config}: "
        raise ConfigError(
            f"{where}data.train: {cfg.data.train} does not exist (relative paths start from the folder evalkit runs in); "
            "'python scripts/build_training_set.py' builds evalkit's training set at results/training-set "
            "(docs/neural.md), or point data.train at yours"
        )
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ConfigError(f"train: steps is {steps!r}; give a whole number of steps, 0 or more")
        cfg.optim["steps"] = steps
    unknown = set(run_overrides) - set(_RUN_DEFAULTS)
    if unknown:
        raise ConfigError(f"train: unknown run settings {sorted(unknown)}")
    cfg.run.update({k: v for k, v in run_overrides.items() if v is not None})
    return Trainer(cfg).run()
