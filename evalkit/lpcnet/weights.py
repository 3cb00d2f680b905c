"""The LPCNet weights file: one .npz (no pickle) with a JSON config, vocoder tensors and quantizer codebooks.

Keys: `config` (UTF-8 JSON as uint8: format, vocoder kind and sizes, training notes),
`vocoder.<parameter>` (the torch state dict's names; matrices float16, vectors float32),
`quantizer.<codebook>` (float32), and for personalised codecs `group<i>.vocoder.<parameter>`
per speaker group plus `speaker.<parameter>` (the speaker encoder) and `speaker.centroids`.
numpy reads it without torch; training code turns it back into state dicts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..neural.bundle import read_npz
from .quantizer import Codebooks

__all__ = ["WEIGHTS_FORMAT", "LPCNetWeights", "load_weights", "save_weights", "state_arrays"]

WEIGHTS_FORMAT = "evalkit-lpcnet-1"


@dataclass(frozen=True)
class LPCNetWeights:
    config: dict
    arrays: dict[str, np.ndarray]

    def codebooks(self) -> Codebooks:
        if "quantizer.stages" not in self.arrays:
            raise ValueError("this weights file has no quantizer codebooks")
        return Codebooks.from_arrays(self.arrays)

    def section(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays under `prefix` (e.g. 'group1.'), with the prefix removed."""
        return {k[len(prefix) :]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def vocoder_state(self, prefix: str = "vocoder."):
        """A torch state dict (float32) of the vocoder under `prefix`."""
        import torch

        return {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in self.section(prefix).items()}


def state_arrays(module, prefix: str = "vocoder.") -> dict[str, np.ndarray]:
    """A torch module's state as arrays: matrices in float16 (half the size), vectors in float32."""
    out = {}
    for name, tensor in module.state_dict().items():
        array = tensor.detach().cpu().float().numpy()
        out[prefix + name] = array.astype(np.float16) if array.ndim >= 2 else array
    return out


def save_weights(
    path: Path,
    model=None,
    codebooks: Codebooks | None = None,
    notes: dict | None = None,
    extra_arrays: dict[str, np.ndarray] | None = None,
    config: dict | None = None,
) -> Path:
    """Write the file atomically; returns its path."""
    config = dict(config or {})
    config.setdefault("format", WEIGHTS_FORMAT)
    arrays = dict(extra_arrays or {})
    if model is not None:
        config.setdefault("vocoder", "framewise")
        config.setdefault("vocoder_config", model.config.to_dict())
        arrays.update(state_arrays(model))
    if codebooks is not None:
        arrays.update(codebooks.arrays())
    if notes:
        config["notes"] = notes
    arrays["config"] = np.frombuffer(json.dumps(config, sort_keys=True).encode(), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **dict(sorted(arrays.items())))
    os.replace(tmp, path)
    return path


def load_weights(path: Path) -> LPCNetWeights:
    """Read a weights file; ValueError if it is not one."""
    arrays = read_npz(path, "LPCNet", article="an")
    try:
        config = json.loads(arrays.pop("config").tobytes().decode())
    except (KeyError, ValueError):
        raise ValueError(f"{path}: LPCNet weights file without a valid config") from None
    found = config.get("format") if isinstance(config, dict) else None
    if found != WEIGHTS_FORMAT:
        raise ValueError(f"{path}: format {found!r}, expected {WEIGHTS_FORMAT}")
    return LPCNetWeights(config, arrays)
