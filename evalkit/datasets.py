"""Datasets: a JSONL manifest, a folder of audio files, a Kaldi-style wav.scp, or one audio file.

Every line of a manifest is checked when the dataset is loaded, before any work: a mistake is one
line naming the file, the line number and the field. The files a manifest names stay inside its
folder (paths with ".." that climb out of it, and absolute paths elsewhere, are refused) unless the
caller allows them to lie outside (an experiment's `allow_outside: true`): a manifest is text that
may come from anywhere, and must not steer evalkit to other files. The same holds for symbolic
links: one whose target lies inside the folder is followed, one that leads out of it (a folder
unpacked from an archive may carry links to any file) is refused unless outside files are allowed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .audio import Audio, load
from .config import read_text
from .errors import ConfigError

__all__ = [
    "Item",
    "load_dataset",
    "unread_audio",
    "check_inside",
    "read_lines",
    "AUDIO_SUFFIXES",
    "UNREAD_AUDIO_SUFFIXES",
    "OUTSIDE_HINT",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
# Audio formats people hand over that evalkit does not read: named wherever such a file is passed over.
UNREAD_AUDIO_SUFFIXES = (
    ".mp3",
    ".m4a",
    ".mp4",
    ".aac",
    ".opus",
    ".wma",
    ".aif",
    ".aiff",
    ".caf",
    ".webm",
    ".amr",
    ".spx",
)
OUTSIDE_HINT = "if it really should, set allow_outside: true in the experiment (evalkit score: --allow-outside)"


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


def load_dataset(source: str | Path, allow_outside: bool = False) -> list[Item]:
    """Items from a .jsonl manifest, a wav.scp file, a folder (searched recursively) or one audio file."""
    source = Path(source)
    if source.is_dir():
        items = _from_folder(source, allow_outside)
    elif source.suffix == ".jsonl":
        items = _from_manifest(source, allow_outside)
    elif source.name.endswith(".scp"):
        items = _from_scp(source, allow_outside)
    elif source.suffix.lower() in AUDIO_SUFFIXES and source.is_file():
        items = [Item(source.stem, source)]
    elif not source.exists():
        raise ConfigError(
            f"{source}: no such dataset file: give a .jsonl manifest, a wav.scp file, a folder of audio "
            "or an audio file"
        )
    else:
        raise ConfigError(
            f"{source}: a dataset is a .jsonl manifest, a wav.scp file, a folder of audio or an "
            f"audio file ({', '.join(AUDIO_SUFFIXES)}), not {source.suffix or 'a file without suffix'}"
        )
    by_id: dict[str, list[Path]] = {}
    for item in items:
        by_id.setdefault(item.id, []).append(item.path)
    duplicates = {i: paths for i, paths in by_id.items() if len(paths) > 1}
    if duplicates:
        first, paths = min(duplicates.items())
        raise ConfigError(
            f"{source}: duplicate item ids {sorted(duplicates)[:5]}: {first!r} is "
            f"{', '.join(_relative(p, source) for p in paths)}; give each item one id"
        )
    if not items:
        raise ConfigError(f"{source}: holds no items{_other_files(source) if source.is_dir() else ''}")
    return items


def unread_audio(source: str | Path) -> list[str]:
    """The audio files of a dataset folder in formats evalkit does not read (relative paths): a folder of
    WAVs with a few MP3s among them would otherwise lose those items without a word."""
    folder = Path(source)
    if not folder.is_dir():
        return []
    found = (p for p in folder.rglob("*") if p.suffix.lower() in UNREAD_AUDIO_SUFFIXES and p.is_file())
    return sorted(str(p.relative_to(folder)) for p in found)


def _other_files(folder: Path) -> str:
    """What a folder without audio evalkit reads holds instead (an .mp3 dataset is the usual case)."""
    suffixes = sorted({p.suffix.lower() or "(none)" for p in folder.rglob("*") if p.is_file()})
    if not suffixes:
        return " (it is empty)"
    return (
        f": evalkit reads {', '.join(AUDIO_SUFFIXES)} files and it has {', '.join(suffixes[:5])}; "
        "convert the audio (e.g. ffmpeg -i a.mp3 a.wav)"
    )


def _relative(path: Path, source: Path) -> str:
    folder = source if source.is_dir() else source.parent
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank line; a missing or unreadable file is one line."""
    text = read_text(path, what)
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def check_inside(path: Path, folder: Path, where: str, allow_outside: bool) -> Path:
    """`folder / path`, normalised; an error naming `where` when the name, or the symbolic links
    it passes through, lead outside the folder."""
    full = Path(os.path.normpath(folder / path))
    if allow_outside:
        return full
    root = Path(os.path.normpath(folder.absolute()))
    if root not in Path(os.path.normpath(full.absolute())).parents:
        raise ConfigError(
            f"{where}: {str(path)!r} lies outside the folder {root}: give a path inside it, "
            f"relative to it ({OUTSIDE_HINT})"
        )
    _check_link_inside(full, folder, where, str(path))
    return full


def _check_link_inside(full: Path, folder: Path, where: str, name: str) -> None:
    """The file a name inside `folder` really opens lies inside it too (links resolved)."""
    target, root = full.resolve(), folder.resolve()
    if root not in target.parents:
        raise ConfigError(
            f"{where}: {name!r} is a symbolic link to {target}, outside the folder {root}: copy the "
            f"file into the folder ({OUTSIDE_HINT})"
        )


def _from_manifest(path: Path, allow_outside: bool) -> list[Item]:
    """Lines {"id", "path", ...}; "ref" may stand for "path", so a manifest of {id, ref, deg} pairs
    serves as the dataset of its own decoded condition."""
    return [_manifest_item(path, number, line, allow_outside) for number, line in read_lines(path, "manifest")]


def _manifest_item(path: Path, number: int, line: str, allow_outside: bool) -> Item:
    where = f"{path}:{number}"
    try:
        entry = json.loads(line)
    except ValueError as err:
        raise ConfigError(
            f'{where}: not valid JSON ({getattr(err, "msg", err)}); each line is one JSON object {{"id", "path"}}'
        ) from None
    if not isinstance(entry, dict):
        raise ConfigError(f'{where}: expected a JSON object {{"id", "path"}}, got {_json_type(entry)}')
    item_id = entry.pop("id", None)
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or str(item_id).strip() == "":
        raise ConfigError(f"{where}: 'id' must be a non-empty string (or a whole number), got {_shown(item_id)}")
    _check_id(str(item_id), where, allow_outside)
    key = "path" if "path" in entry or "ref" not in entry else "ref"
    file = entry.pop(key, None)
    if not isinstance(file, str) or not file.strip():
        raise ConfigError(f"{where}: '{key}' must be the audio file's path (a non-empty string), got {_shown(file)}")
    for name in ("speaker", "text"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise ConfigError(f"{where}: '{name}' must be a string or null, got {_shown(entry[name])}")
    full = check_inside(Path(file), path.parent, f"{where}: {key}", allow_outside)
    return Item(str(item_id), full, entry.pop("speaker", None), entry.pop("text", None), entry)


def _check_id(item_id: str, where: str, allow_outside: bool) -> None:
    """Ids name files through patterns ("decoded/{id}.wav"): one must not lead out of a folder."""
    if not allow_outside and (item_id.startswith("/") or ".." in item_id.replace("\\", "/").split("/")):
        raise ConfigError(
            f"{where}: id {item_id!r} has '..' parts or starts with '/'; decoded files are found by "
            f"id, so it could name files outside their folder ({OUTSIDE_HINT})"
        )


def _json_type(value) -> str:
    return {
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _shown(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _from_folder(folder: Path, allow_outside: bool) -> list[Item]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    for path in files if not allow_outside else ():
        _check_link_inside(path, folder, str(path), path.name)
    return [Item(str(p.relative_to(folder).with_suffix("")), p) for p in files]


def _from_scp(path: Path, allow_outside: bool) -> list[Item]:
    items = []
    for number, line in read_lines(path, "wav.scp"):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].rstrip().endswith("|"):
            raise ConfigError(f"{path}:{number}: expected '<id> <path>' (piped commands are not supported)")
        _check_id(parts[0], f"{path}:{number}", allow_outside)
        file = check_inside(Path(parts[1].strip()), path.parent, f"{path}:{number}", allow_outside)
        items.append(Item(parts[0], file))
    return items
