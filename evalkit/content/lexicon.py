"""Text to phones with the CMU pronouncing dictionary shipped in the pocketsphinx wheel."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..errors import MetricError
from .phones import normalize_label

__all__ = ["text_phones", "words", "pronunciation"]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """Lower-case words; punctuation and digits dropped (the dictionary spells numbers out)."""
    return _WORD.findall(text.lower())


def pronunciation(word: str) -> tuple[str, ...] | None:
    """The dictionary's first pronunciation of `word` as ARPAbet without stress; None if unknown."""
    return _dictionary().get(word.lower())


def text_phones(text: str, skip_unknown: bool = False) -> list[str]:
    """The expected phone sequence of `text`; MetricError names the words the dictionary lacks
    (unless `skip_unknown`, which leaves them out)."""
    found, missing = [], []
    for word in words(text):
        phones = pronunciation(word)
        if phones is None:
            missing.append(word)
        else:
            found.extend(phones)
    if missing and not skip_unknown:
        raise MetricError(f"words not in the CMU dictionary: {', '.join(sorted(set(missing))[:10])}")
    return found


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, tuple[str, ...]]:
    entries: dict[str, tuple[str, ...]] = {}
    for line in _dictionary_path().read_text(encoding="utf-8", errors="replace").splitlines():
        head, _, rest = line.partition(" ")
        if not rest or "(" in head:  # "word(2)" lines are alternative pronunciations
            continue
        phones = tuple(p for p in (normalize_label(x) for x in rest.split("#")[0].split()) if p)
        entries.setdefault(head, phones)
    return entries


def _dictionary_path() -> Path:
    from pocketsphinx import get_model_path

    return Path(get_model_path("en-us/cmudict-en-us.dict"))
