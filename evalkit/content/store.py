"""Reference phones kept on disk in a run's cache folder, so every worker and later run reuses them.

A reference is recognised once for all the codecs it goes through; which worker gets which
(item, codec) task does not matter. Entries are small JSON files named by a hash of the
recognizer's name and version and of the reference's samples, written atomically; a damaged or
foreign entry reads as missing and is recomputed. The folder is bounded: each of its 256
shards keeps its newest KEEP_PER_SHARD entries.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from .phones import ARPABET, Phone

__all__ = ["PhoneStore", "phone_key", "FORMAT", "KEEP_PER_SHARD"]

FORMAT = 1  # bump when an entry's layout changes: older entries then read as missing
KEEP_PER_SHARD = 64  # 256 shards: at most 16384 references (about 5 kB each)
FOLDER = "phones"


def phone_key(recognizer: str, version: str, samples_digest: str) -> str:
    """The entry's name: everything that decides the recognized phones."""
    return hashlib.sha256(f"{FORMAT}|{recognizer}|{version}|{samples_digest}".encode()).hexdigest()


class PhoneStore:
    """Recognized phones under `root/phones/ab/abcdef....json`."""

    def __init__(self, root: str | Path):
        self.root = Path(root) / FOLDER

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[Phone] | None:
        """The stored phones, or None when missing, unreadable or not this key's."""
        try:
            entry = json.loads(self.path(key).read_text())
            if entry["format"] != FORMAT or entry["key"] != key:
                return None
            return [_phone(row) for row in entry["phones"]]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def put(self, key: str, phones: list[Phone]) -> None:
        """Write atomically (a killed worker never leaves half an entry) and keep the shard bounded.
        A read-only or full disk only costs the reuse, never the result."""
        path = self.path(key)
        rows = [[p.label, float(p.start), float(p.end), float(p.confidence)] for p in phones]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{key}.{os.getpid()}.partial")
            partial.write_text(json.dumps({"format": FORMAT, "key": key, "phones": rows}))
            os.replace(partial, path)
            _prune(path.parent)
        except OSError:
            pass


def _phone(row: list) -> Phone:
    label, start, end, confidence = row
    numbers = (start, end, confidence)
    if label not in ARPABET or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
        raise ValueError(f"not a stored phone: {row!r}")
    return Phone(label, start, end, confidence)


def _prune(shard: Path) -> None:
    """Drop the oldest entries past KEEP_PER_SHARD (another worker may be pruning too)."""
    entries = list(shard.glob("*.json"))
    if len(entries) <= KEEP_PER_SHARD:
        return
    aged = []
    for entry in entries:
        try:
            aged.append((entry.stat().st_mtime, entry))
        except OSError:
            continue
    for _, entry in sorted(aged)[: len(aged) - KEEP_PER_SHARD]:
        entry.unlink(missing_ok=True)
