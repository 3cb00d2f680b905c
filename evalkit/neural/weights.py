"""Weights files of neural codecs: where a card's path points, and the sha256 pin checked on load."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..cache import file_digest
from ..errors import ConfigError

__all__ = ["resolve_weights", "verify_sha256", "pinned_path"]


def resolve_weights(path: str | Path, what: str) -> Path:
    """An absolute path as is; a relative one from the built-in card folder (a card elsewhere has its
    relative paths made absolute against its own folder by Card.build)."""
    from ..cards import cards_dir  # here, not at import: cards imports the codec registry

    if not isinstance(path, (str, Path)) or not str(path):
        raise ConfigError(f"{what}: a weights path is required")
    path = Path(path).expanduser()
    return path if path.is_absolute() else cards_dir() / path


@lru_cache(maxsize=32)
def _digest(path: Path, size: int, mtime: float) -> str:
    return file_digest(path)  # size and mtime key the cache: a changed file is hashed again


def verify_sha256(path: Path, sha256: str, what: str) -> None:
    """ConfigError unless the file exists and its sha256 is the pinned one."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ConfigError(f"{what}: sha256 must be the 64 hex digits of {path.name}, got {sha256!r}")
    if not path.is_file():
        raise ConfigError(f"{what}: weights file {path} not found")
    stat = path.stat()
    actual = _digest(path, stat.st_size, stat.st_mtime)
    if actual != sha256.lower():
        raise ConfigError(f"{what}: {path} has sha256 {actual}, but the card pins {sha256}; "
                          "the file changed or the card is stale")


def pinned_path(path: str | Path, sha256: str, what: str) -> Path:
    """Resolve and verify in one step."""
    resolved = resolve_weights(path, what)
    verify_sha256(resolved, sha256, what)
    return resolved
