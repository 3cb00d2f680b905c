"""Phones with times, the recognizer interface, and the registry of recognizers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..audio import Audio
from ..registry import Registry

__all__ = ["Phone", "PhoneRecognizer", "RECOGNIZERS", "SILENCE", "ARPABET", "normalize_label", "make_recognizer"]

SILENCE = "SIL"
# The 39 CMU/ARPAbet phones without stress marks: the common alphabet of every voice.
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)


@dataclass(frozen=True)
class Phone:
    """One recognized phone: ARPAbet label (no stress), start and end in seconds, and the
    recognizer's posterior 0-1 (1.0 from recognizers that have none)."""

    label: str
    start: float
    end: float
    confidence: float = 1.0

    @property
    def duration(self) -> float:
        return self.end - self.start


@runtime_checkable
class PhoneRecognizer(Protocol):
    """Anything that turns audio into timed phones; `name` and `version` travel with the results."""

    name: str
    version: str

    def recognize(self, audio: Audio) -> list[Phone]:
        """Phones in time order, silences and noises dropped."""
        ...


# Factories (called with no arguments) rather than instances: each worker builds its own.
RECOGNIZERS: Registry = Registry("phone recognizer", "evalkit.phone_recognizers", has_builtins=True)


def make_recognizer(name: str) -> PhoneRecognizer:
    """A fresh recognizer registered under `name` (ConfigError when unknown)."""
    return RECOGNIZERS.get(name)()


def normalize_label(label: str) -> str | None:
    """ARPAbet without stress digits, upper case; None for silence, noise and unknown symbols."""
    base = label.strip().upper().rstrip("012")
    return base if base in ARPABET else None
