"""Weights bundles as one .npz (no pickle): a JSON config beside named numpy arrays.

The config travels as UTF-8 JSON in a uint8 array named `config` and carries a `format` string
that the reader checks. numpy reads it without torch. Writes are atomic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["save_bundle_arrays", "load_bundle_arrays"]


def save_bundle_arrays(
    path: Path, format: str, config: dict, arrays: dict[str, np.ndarray], compressed: bool = True
) -> Path:
    """Write `arrays` and `config` (with `format` added) to `path` atomically; returns the path."""
    payload = dict(arrays)
    payload["config"] = np.frombuffer(json.dumps({**config, "format": format}, sort_keys=True).encode(), np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    (np.savez_compressed if compressed else np.savez)(tmp, **dict(sorted(payload.items())))
    os.replace(tmp, path)
    return path


def load_bundle_arrays(path: Path, format: str, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, arrays) of a bundle of `format`; ValueError naming the file and `what` otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        config = json.loads(arrays.pop("config").tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise ValueError(f"{path}: not a {what} weights file ({err})") from None
    if not isinstance(config, dict) or config.get("format") != format:
        found = config.get("format") if isinstance(config, dict) else None
        raise ValueError(f"{path}: format {found!r}, expected {format}")
    return config, arrays
