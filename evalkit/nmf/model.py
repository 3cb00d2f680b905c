"""The low-rank codec's trained bundle: bases, activation quantizers and their entropy models, in one .npz.

File layout (numpy .npz, no pickle): `config` (UTF-8 JSON as uint8: format, STFT settings, the
configurations it holds with their measured training bitrates, training notes) and per
configuration arrays named `<basis>.r<rank>.*` (the basis; PCA also its mean) and
`<basis>.r<rank>.q<step>.*` (the quantizer: `low`, `levels`, `counts`).

Quantizers, one scalar quantizer per component with step `step_db` (dB):

* NMF activations h >= 0: symbol i is 20 log10 h = low + i step, from the training set's
  FLOOR_PERCENTILE (`low`; anything below is sent as `low`, never as zero: a zeroed component
  leaves its bins empty, which the log-spectral fit punishes hardest) to its 99.9th percentile.
* PCA coefficients c (dB): symbol i is c = (i - levels // 2) step, |c| up to the training set's
  99.9th percentile.

Each component's symbols are range-coded with a categorical model of their training counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codecs.entropy import SymbolModel
from ..neural.bundle import load_bundle_arrays, save_bundle_arrays
from .basis import fit_activations, from_db, to_db
from .spectra import BINS

__all__ = [
    "FORMAT",
    "Bundle",
    "Quantizer",
    "LowRankModel",
    "load_bundle",
    "save_bundle",
    "config_key",
    "FLOOR_PERCENTILE",
]

FORMAT = "evalkit-nmf-1"
FLOOR_PERCENTILE = 2.0  # NMF activations below this share of the training set's are sent as this floor
TOP_PERCENTILE = 99.9
PCA_SCALE = float(np.sqrt(BINS))  # PCA coefficients in dB RMS over the bins: a step of s dB moves bins by s dB RMS


def config_key(basis: str, rank: int, step_db: float | None = None) -> str:
    key = f"{basis}.r{rank}"
    return key if step_db is None else f"{key}.q{step_db:g}"


@dataclass(frozen=True)
class Quantizer:
    """Per-component scalar quantizer (`low` (rank,), `levels` (rank,)) and the symbols' models."""

    kind: str  # "nmf" or "pca"
    step: float
    low: np.ndarray
    levels: np.ndarray
    models: tuple[SymbolModel, ...]

    def symbols(self, values: np.ndarray) -> np.ndarray:
        """(blocks, rank) integer symbols of activations (nmf) or coefficients (pca)."""
        top = self.levels - 1
        if self.kind == "nmf":
            level = 20 * np.log10(np.maximum(values, 1e-30))
            return np.clip(np.round((level - self.low) / self.step), 0, top).astype(np.int64)
        centre = self.levels // 2
        return (centre + np.clip(np.round(values / self.step), -centre, top - centre)).astype(np.int64)

    def values(self, symbols: np.ndarray) -> np.ndarray:
        """The reconstruction of `symbols` (inverse of `symbols` up to the quantisation error)."""
        symbols = np.asarray(symbols, np.int64)
        if self.kind == "nmf":
            return from_db(self.low + symbols * self.step)
        return (symbols - self.levels // 2) * self.step

    @classmethod
    def train(cls, kind: str, step: float, values: np.ndarray) -> Quantizer:
        """Ranges from the training values (blocks, rank), then models of their symbols' counts."""
        if kind == "nmf":
            level = 20 * np.log10(np.maximum(values, 1e-30))
            low = np.percentile(level, FLOOR_PERCENTILE, axis=0)
            top = np.percentile(level, TOP_PERCENTILE, axis=0)
            levels = 1 + np.ceil((top - low) / step).astype(np.int64)
        else:
            low = np.zeros(values.shape[1])
            reach = np.ceil(np.percentile(np.abs(values), TOP_PERCENTILE, axis=0) / step).astype(np.int64)
            levels = 2 * reach + 1
        bare = cls(kind, step, low, levels, ())
        symbols = bare.symbols(values)
        counts = np.zeros((values.shape[1], int(levels.max())), np.int64)
        for k in range(values.shape[1]):
            counts[k, : levels[k]] = np.bincount(symbols[:, k], minlength=levels[k])
        return bare.with_counts(counts)

    def with_counts(self, counts: np.ndarray) -> Quantizer:
        models = tuple(SymbolModel(counts[k, : self.levels[k]], f"component {k}") for k in range(len(self.levels)))
        return Quantizer(self.kind, self.step, self.low, self.levels, models)

    def counts(self) -> np.ndarray:
        out = np.zeros((len(self.models), int(self.levels.max())), np.int64)
        for k, model in enumerate(self.models):
            out[k, : model.size] = model.counts
        return out


@dataclass(frozen=True)
class LowRankModel:
    """One basis: NMF (`basis` (rank, bins)) or PCA (`basis` plus `mean` (bins,))."""

    kind: str
    basis: np.ndarray
    mean: np.ndarray | None = None
    beta: float = 1.0  # NMF: the beta-divergence fitted (1 KL, 0 Itakura–Saito)
    power: float = 1.0  # NMF: the spectra factorised are magnitudes ** power

    @property
    def rank(self) -> int:
        return len(self.basis)

    def analyse(self, magnitudes: np.ndarray) -> np.ndarray:
        """(blocks, rank) activations (nmf) or coefficients (pca) of block magnitudes."""
        if self.kind == "nmf":
            return fit_activations(np.asarray(magnitudes, np.float64) ** self.power, self.basis, self.beta)
        return (to_db(magnitudes) - self.mean) @ self.basis.T / PCA_SCALE

    def synthesise(self, values: np.ndarray) -> np.ndarray:
        """Block magnitudes from activations or coefficients."""
        values = np.atleast_2d(values)
        if self.kind == "nmf":
            return (values @ self.basis) ** (1 / self.power)
        return from_db(self.mean + PCA_SCALE * values @ self.basis)


@dataclass(frozen=True)
class Bundle:
    config: dict
    arrays: dict[str, np.ndarray]

    def model(self, kind: str, rank: int) -> LowRankModel:
        key = config_key(kind, rank)
        if f"{key}.basis" not in self.arrays:
            raise KeyError(key)
        mean = self.arrays.get(f"{key}.mean")
        divergence = self.config.get("nmf_divergence", {})
        return LowRankModel(
            kind,
            np.asarray(self.arrays[f"{key}.basis"], np.float64),
            None if mean is None else np.asarray(mean, np.float64),
            float(divergence.get("beta", 1.0)),
            float(divergence.get("power", 1.0)),
        )

    def quantizer(self, kind: str, rank: int, step: float) -> Quantizer:
        key = config_key(kind, rank, step)
        if f"{key}.counts" not in self.arrays:
            raise KeyError(key)
        bare = Quantizer(
            kind,
            float(step),
            np.asarray(self.arrays[f"{key}.low"], np.float64),
            np.asarray(self.arrays[f"{key}.levels"], np.int64),
            (),
        )
        return bare.with_counts(np.asarray(self.arrays[f"{key}.counts"], np.int64))

    def configurations(self) -> list[dict]:
        return list(self.config.get("configurations", []))


def save_bundle(path: Path, config: dict, models: dict[str, LowRankModel], quantizers: dict[str, Quantizer]) -> Path:
    """Write the bundle atomically: models by config_key(kind, rank), quantizers by config_key(kind, rank, step)."""
    arrays = {}
    for key, model in models.items():
        arrays[f"{key}.basis"] = model.basis.astype(np.float32)
        if model.mean is not None:
            arrays[f"{key}.mean"] = model.mean.astype(np.float32)
    for key, q in quantizers.items():
        arrays.update({f"{key}.low": q.low.astype(np.float32), f"{key}.levels": q.levels, f"{key}.counts": q.counts()})
    return save_bundle_arrays(path, FORMAT, config, arrays)


def load_bundle(path: Path) -> Bundle:
    """Read a bundle; ValueError naming the file if it is not one."""
    return Bundle(*load_bundle_arrays(path, FORMAT, "low-rank codec"))
