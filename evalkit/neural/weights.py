"""Weights files of neural codecs: where a card's path points, and the sha256 pin checked on load."""

from __future__ import annotations

import json
import pickletools
import zipfile
from functools import lru_cache
from pathlib import Path

from ..cache import file_digest
from ..config import describe
from ..errors import ConfigError
from ..resources import cards_dir

__all__ = ["resolve_weights", "verify_sha256", "pinned_path", "stored_json", "check_unpacked_size"]

MAX_UNPACK_RATIO = 100  # float weights compress about 1-2x; zeros 1000x
UNPACK_FLOOR = 256 << 20  # below this any ratio is harmless


def resolve_weights(path: str | Path, what: str) -> Path:
    """An absolute path as is; a relative one from the built-in card folder (a card elsewhere has its
    relative paths made absolute against its own folder by Card.build)."""
    if not isinstance(path, (str, Path)) or not str(path):
        got = "" if isinstance(path, (str, Path)) else f", got {describe(path)}"
        raise ConfigError(f"{what}: a weights path (a string) is required{got}")
    path = Path(path).expanduser()
    return path if path.is_absolute() else cards_dir() / path


@lru_cache(maxsize=32)
def _digest(path: Path, size: int, mtime: float) -> str:
    return file_digest(path)  # size and mtime key the cache: a changed file is hashed again


def verify_sha256(path: Path, sha256: str, what: str) -> None:
    """ConfigError unless the file exists and its sha256 is the pinned one."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ConfigError(f"{what}: sha256 must be the 64 hex digits of {path.name}, got {sha256!r}")
    if not path.exists():
        raise ConfigError(f"{what}: weights file {path} not found")
    if not path.is_file():  # a folder, /dev/zero, a pipe: hashing it would fail or never end
        raise ConfigError(f"{what}: weights path {path} is not a regular file; point the card at the weights file")
    stat = path.stat()
    actual = _digest(path, stat.st_size, stat.st_mtime)
    if actual != sha256.lower():
        raise ConfigError(
            f"{what}: {path} has sha256 {actual}, but the card pins {sha256}; the file changed or the card is stale"
        )


def pinned_path(path: str | Path, sha256: str, what: str) -> Path:
    """Resolve and verify in one step."""
    resolved = resolve_weights(path, what)
    verify_sha256(resolved, sha256, what)
    check_unpacked_size(resolved, what)
    return resolved


def check_unpacked_size(path: Path, what: str) -> None:
    """ConfigError when a zip archive (torch checkpoints, .npz) unpacks to more than MAX_UNPACK_RATIO times
    its size and more than UNPACK_FLOOR bytes: weights barely compress, so that is a zip bomb that would
    take gigabytes of memory when read (a 1.4 MB file claiming a 1.5 GB pickle)."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile):
        return  # the reader of the format says what is wrong with it
    size = path.stat().st_size
    if unpacked > UNPACK_FLOOR and unpacked > MAX_UNPACK_RATIO * size:
        raise ConfigError(
            f"{what}: {path} unpacks to {unpacked} bytes from {size}; weights do not compress "
            f"{MAX_UNPACK_RATIO} times, so it is refused as a zip bomb"
        )


def stored_json(path: Path, keys: tuple[str, ...]) -> dict[str, dict]:
    """The JSON strings a torch.save checkpoint keeps under `keys`, parsed, without torch: the string
    after each key among the archive pickle's opcodes (read, never executed). ValueError, OSError or
    zipfile.BadZipFile when the file is laid out otherwise."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if not names:
            raise ValueError(f"{path}: no pickle in the archive")
        pickled = archive.read(names[0])
    strings = [arg for _, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)]
    found = {key: json.loads(strings[i + 1]) for i, key in enumerate(strings[:-1]) if key in keys}
    if set(found) != set(keys) or not all(isinstance(v, dict) for v in found.values()):
        raise ValueError(f"{path}: no JSON object under {sorted(set(keys) - set(found))}")
    return found
