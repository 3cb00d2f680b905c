"""The predictive codec's weights bundle: predictor, residual codebooks and per-allocation entropy models.

One .npz (evalkit.neural.bundle): `predictor.*` (the torch parameter names, float32),
`residual.*` (codebooks, float32) and `entropy.<allocation>.<model>` (integer symbol counts);
the JSON config names the allocations (thresholds, measured bitrate, empirical entropy) and
holds the training notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..neural.bundle import load_bundle_arrays, save_bundle_arrays
from .coder import ModelSet
from .residual import Allocation, Codebooks

__all__ = ["FORMAT", "PredictiveBundle", "load_bundle", "save_bundle"]

FORMAT = "evalkit-predictive-1"


@dataclass(frozen=True)
class PredictiveBundle:
    config: dict
    arrays: dict[str, np.ndarray]

    def predictor_arrays(self) -> dict[str, np.ndarray]:
        return {k[len("predictor.") :]: v for k, v in self.arrays.items() if k.startswith("predictor.")}

    def codebooks(self) -> Codebooks:
        return Codebooks.from_arrays(self.arrays)

    def allocation(self, name: str) -> tuple[dict, Allocation, ModelSet]:
        """(its config entry, thresholds, entropy models) of a named allocation; KeyError if absent."""
        entry = next((a for a in self.config.get("allocations", []) if a["name"] == name), None)
        if entry is None:
            raise KeyError(name)
        prefix = f"entropy.{name}."
        counts = {k[len(prefix) :]: v for k, v in self.arrays.items() if k.startswith(prefix)}
        allocation = Allocation(
            float(entry["c0_threshold"]), float(entry["vq_threshold"]), int(entry.get("frame_step", 1))
        )
        return entry, allocation, ModelSet(counts)

    def allocation_names(self) -> list[str]:
        return [a["name"] for a in self.config.get("allocations", [])]


def load_bundle(path: Path) -> PredictiveBundle:
    return PredictiveBundle(*load_bundle_arrays(path, FORMAT, "predictive codec"))


def save_bundle(path: Path, bundle: PredictiveBundle) -> Path:
    config = {k: v for k, v in bundle.config.items() if k != "format"}
    return save_bundle_arrays(path, FORMAT, config, bundle.arrays)
