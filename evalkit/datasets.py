"""Datasets: a JSONL manifest, a folder of audio files, a Kaldi-style wav.scp, or one audio file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .audio import Audio, load
from .errors import ConfigError

__all__ = ["Item", "load_dataset", "AUDIO_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class Item:
    """One utterance: an id unique in its dataset, a file, and what is known about it."""

    id: str
    path: Path
    speaker: str | None = None
    text: str | None = None
    extra: dict = field(default_factory=dict)

    def load(self) -> Audio:
        return load(self.path, id=self.id)


def load_dataset(source: str | Path) -> list[Item]:
    """Items from a .jsonl manifest, a wav.scp file, a folder (searched recursively) or one audio file."""
    source = Path(source)
    if source.is_dir():
        items = _from_folder(source)
    elif source.suffix == ".jsonl":
        items = _from_manifest(source)
    elif source.name.endswith(".scp"):
        items = _from_scp(source)
    elif source.suffix.lower() in AUDIO_SUFFIXES and source.is_file():
        items = [Item(source.stem, source)]
    else:
        raise ConfigError(f"{source}: a dataset is a .jsonl manifest, a wav.scp file, a folder of audio or an "
                          "audio file (does it exist?)")
    ids = [item.id for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{source}: duplicate item ids {duplicates[:5]}")
    if not items:
        raise ConfigError(f"{source}: holds no items")
    return items


def _from_manifest(path: Path) -> list[Item]:
    """Lines {"id", "path", ...}; "ref" may stand for "path", so a manifest of {id, ref, deg} pairs
    serves as the dataset of its own decoded condition."""
    items = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            id_, file = str(entry.pop("id")), entry.pop("path") if "path" in entry else entry.pop("ref")
            if not isinstance(file, str) or not file:
                raise ValueError(file)
        except (ValueError, KeyError, AttributeError, TypeError):
            raise ConfigError(f"{path}:{number}: each line must be a JSON object with 'id' and 'path' (or 'ref')") from None
        items.append(Item(id_, path.parent / file, entry.pop("speaker", None), entry.pop("text", None), entry))
    return items


def _from_folder(folder: Path) -> list[Item]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return [Item(str(p.relative_to(folder).with_suffix("")), p) for p in files]


def _from_scp(path: Path) -> list[Item]:
    items = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2 or parts[1].rstrip().endswith("|"):
            raise ConfigError(f"{path}:{number}: expected '<id> <path>' (piped commands are not supported)")
        file = Path(parts[1].strip())
        items.append(Item(parts[0], file if file.is_absolute() else path.parent / file))
    return items
