"""Training data for neural codecs: a dataset manifest in memory, random crops, augmentation.

Every item is loaded once (resampled to the model's rate, mixed to mono), loudness-normalised
to `target_lufs` and kept as 16-bit integers in one array. A batch is a set of random crops,
drawn with probability proportional to item length, each with a random gain and, sometimes, a
little white noise at a random SNR; crops of shorter items are zero-padded. All randomness
comes from one seeded numpy Generator whose state is saved with checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import loudness, resample, to_mono
from ..config import Checker, describe
from ..datasets import Item, load_dataset
from ..errors import AudioError, ConfigError

__all__ = ["DataConfig", "CropSampler", "check_holdout"]

_SCALE = 32767.0


@dataclass(frozen=True)
class DataConfig:
    train: str  # a manifest, wav.scp or folder (evalkit.datasets.load_dataset)
    holdout: str | None = None  # evaluation set that must not overlap the training set
    crop_seconds: float = 1.0
    target_lufs: float = -26.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    noise_prob: float = 0.3
    noise_snr_db: tuple[float, float] = (25.0, 50.0)
    max_items: int | None = None  # use only the first N items (tests, quick runs)

    allow_outside: bool = False  # manifest paths may lie outside the manifest's folder

    @classmethod
    def from_dict(cls, data: dict, base: Path = Path("."), check: Checker | None = None) -> DataConfig:
        check = check or Checker("training data")
        data = dict(check.mapping(data, "data", set(cls.__dataclass_fields__), required=("train",)))
        for key in ("train", "holdout"):
            if data.get(key) is not None:
                data[key] = str(base / check.text(data[key], f"data.{key}", required=True))
        for key, low, high in (("noise_prob", 0.0, 1.0), ("target_lufs", -70.0, 0.0)):
            if key in data:
                check.number(data[key], f"data.{key}", low, high)
        if "crop_seconds" in data:
            check.number(data["crop_seconds"], "data.crop_seconds", above=0.0)
        for key in ("gain_db", "noise_snr_db"):
            if key in data:
                data[key] = _number_pair(check, data[key], f"data.{key}")
        if data.get("max_items") is not None:
            check.integer(data["max_items"], "data.max_items", 1, 2**62)
        if "allow_outside" in data:
            check.boolean(data["allow_outside"], "data.allow_outside")
        return cls(**data)


def _number_pair(check: Checker, value, key: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        check.fail(key, f"must be a list [low, high] of two numbers, got {describe(value)}")
    low, high = (check.number(v, f"{key}[{i}]") for i, v in enumerate(value))
    if low > high:
        check.fail(key, f"low {low:g} is above high {high:g}")
    return low, high


def check_holdout(train: list[Item], holdout: list[Item]) -> None:
    """Refuse training items that are held-out items (same id, file or recorded sha256)."""

    def keys(items):
        return (
            {i.id for i in items},
            {i.path.resolve() for i in items},
            {i.extra.get("sha256") for i in items} - {None},
        )

    ids, paths, hashes = keys(holdout)
    clash = [i.id for i in train if i.id in ids or i.path.resolve() in paths or i.extra.get("sha256") in hashes]
    if clash:
        raise ConfigError(f"training data contains held-out items: {clash[:5]}")


def at_loudness(item: Item, sample_rate: int, target_lufs: float) -> np.ndarray | None:
    """The item's mono samples at `sample_rate` scaled to `target_lufs`; None if too short or silent to measure."""
    audio = to_mono(resample(item.load(), sample_rate))
    try:
        level = loudness(audio)
    except AudioError:
        return None
    if not np.isfinite(level):
        return None
    return audio.samples[0] * 10 ** ((target_lufs - level) / 20)


class CropSampler:
    """Random, augmented training crops (B, 1, crop) as float32 from a dataset in memory."""

    def __init__(self, config: DataConfig, sample_rate: int, seed: int = 0):
        self.config, self.sample_rate = config, sample_rate
        self.crop = int(round(config.crop_seconds * sample_rate))
        items = load_dataset(config.train, config.allow_outside)[: config.max_items]
        if config.holdout:
            check_holdout(items, load_dataset(config.holdout, config.allow_outside))
        clips = [c for c in (self._load(item) for item in items) if c is not None]
        if not clips:
            raise ConfigError(f"{config.train}: no usable audio (every item was silent or too short)")
        self.samples = np.concatenate(clips)
        self.lengths = np.array([len(c) for c in clips])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.rng = np.random.default_rng(seed)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    def _load(self, item: Item) -> np.ndarray | None:
        """int16 samples at -`target_lufs`, or None for items too short or silent to normalise."""
        x = at_loudness(item, self.sample_rate, self.config.target_lufs)
        if x is None:
            return None
        return np.clip(np.round(x * _SCALE), -32768, 32767).astype(np.int16)

    def batch(self, size: int) -> np.ndarray:
        return np.stack([self._crop() for _ in range(size)])[:, None, :]

    def _crop(self) -> np.ndarray:
        rng, cfg = self.rng, self.config
        index = rng.choice(len(self.lengths), p=self.lengths / self.lengths.sum())
        length, start = self.lengths[index], self.offsets[index]
        begin = start + rng.integers(0, max(length - self.crop, 0) + 1)
        x = self.samples[begin : begin + min(self.crop, length)].astype(np.float32) / _SCALE
        x = np.pad(x, (0, self.crop - len(x)))
        x = x * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
        if rng.random() < cfg.noise_prob:
            rms = np.sqrt(np.mean(x**2) + 1e-12)
            x = x + rng.standard_normal(len(x)).astype(np.float32) * rms * 10 ** (-rng.uniform(*cfg.noise_snr_db) / 20)
        return np.clip(x, -1.0, 1.0)

    def state(self) -> str:
        return json.dumps(self.rng.bit_generator.state)

    def restore(self, state: str) -> None:
        self.rng.bit_generator.state = json.loads(state)
