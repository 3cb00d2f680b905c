"""Weights bundles as one .npz (no pickle): a JSON config beside named numpy arrays.

The config travels as UTF-8 JSON in a uint8 array named `config` and carries a `format` string
that the reader checks. numpy reads it without torch. Writes are atomic.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_bundle_arrays", "load_bundle_arrays", "read_npz"]


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
    arrays = read_npz(path, what)
    try:
        config = json.loads(arrays.pop("config").tobytes().decode())
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a {what} weights file ({err})") from None
    if not isinstance(config, dict) or config.get("format") != format:
        found = config.get("format") if isinstance(config, dict) else None
        raise ValueError(f"{path}: format {found!r}, expected {format}")
    return config, arrays


def read_npz(path: Path, what: str, article: str = "a") -> dict[str, np.ndarray]:
    """Every array of an .npz weights file; ValueError naming the file when it is not a zip of .npy
    arrays, when an array's header declares more bytes than its member holds (numpy would allocate
    what the header says first), holds Python objects, or has NaN or infinite values."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                _check_member(archive, member)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not {article} {what} weights file ({type(err).__name__}: {err})") from None
    for key, array in arrays.items():
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: array {key!r} of the {what} weights holds NaN or infinite values")
    return arrays


def _check_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """ValueError unless the member is a .npy array of plain numbers no larger than the bytes it holds."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        held = member.file_size - stream.tell()
    if dtype.hasobject:
        raise ValueError(f"array {member.filename} holds Python objects, which are never loaded")
    if dtype.kind not in "biuf":  # weights are numbers: text, complex or records are another file
        raise ValueError(f"array {member.filename} is of type {dtype}, not real numbers")
    declared = math.prod(shape) * dtype.itemsize
    if declared > held:
        raise ValueError(f"array {member.filename} declares shape {shape} ({declared} bytes) but holds {held} bytes")
