"""Content checks for one item: phone error rate and hallucination events.

An edit between the reference's and the decoded audio's phones becomes a hallucination flag
when three voices agree: the recognizer heard different phones, the spectra really changed
there (`content_change`, noise and codec colouring taken out), and the decoded audio around
it is clean (`spectral_snr` of the context). Text, when known and English, is the third
voice and can veto: a change towards the text means the recognizer misheard the reference.
(A change away from the text is also what recognizer jitter looks like, so it earns no extra
confidence: measured on the validation set, such a boost only added false alarms.)
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..audio import Audio
from .align import Edit, align, align_labels, edit_runs, phone_error_rate
from .lexicon import pronunciation, text_phones, words
from .phones import Phone, PhoneRecognizer, make_recognizer
from .spectra import RATE, active_frames, content_change, frames_between, log_mel, spectral_snr

__all__ = ["ContentEvent", "ContentReport", "analyze", "forget_phones", "CHANGE_DB", "QUALITY_DB", "DEFAULT_RECOGNIZER"]

DEFAULT_RECOGNIZER = "pocketsphinx"
# Calibrated on the project's validation set (benchmarks/bench_hallucination.py prints the result).
CHANGE_DB = 5.5  # content change (dB) at which an event's confidence is 0.5
CHANGE_SLOPE_DB = 1.0  # dB per logit unit: how quickly confidence rises past CHANGE_DB
QUALITY_DB = 15.0  # context spectral SNR (dB) from which the decoded audio counts as clean
TEXT_VETO = 1.5  # logit units a change fully towards the text loses
TEXT_COVERAGE = 0.8  # share of the text's words the dictionary must know (else: not English; ignored)
WIDEN = 0.05  # seconds each side of an edit searched for the change (phone boundaries are rough)
CONTEXT = 0.5  # seconds each side of an edit that judge the local quality
SMOOTH_FRAMES = 5  # 50 ms moving average: a phone change lasts longer than a codec glitch
PHONE_CACHE = 32  # recognized items kept per process (a reference is shared by every codec)


@dataclass(frozen=True)
class ContentEvent:
    """One place where the decoded phones differ from the reference's."""

    start: float  # seconds
    end: float
    ref_phones: str  # space-separated ARPAbet, empty for an insertion
    deg_phones: str
    confidence: float  # 0-1 that the phone identity really changed
    local_quality: float  # dB, spectral SNR of the decoded audio around the event
    change_db: float  # how far the spectra moved there
    flagged: bool  # a hallucination: confident change in locally clean audio


@dataclass(frozen=True)
class ContentReport:
    """Everything the checks found in one item."""

    per: float
    events: tuple[ContentEvent, ...]
    duration: float  # seconds
    ref_phones: int
    recognizer: str  # name and version

    @property
    def hallucinations(self) -> int:
        return sum(e.flagged for e in self.events)

    @property
    def hallucinations_per_min(self) -> float:
        return 60.0 * self.hallucinations / self.duration


def analyze(ref: np.ndarray, deg: np.ndarray, text: str | None = None,
            recognizer: PhoneRecognizer | None = None) -> ContentReport:
    """Compare mono 16 kHz `ref` and `deg` (same length); deterministic for the same input."""
    recognizer = recognizer or make_recognizer(DEFAULT_RECOGNIZER)
    frames = min(len(ref), len(deg))
    ref, deg = np.asarray(ref, dtype=np.float64)[:frames], np.asarray(deg, dtype=np.float64)[:frames]
    ref_phones, deg_phones = _recognize(recognizer, ref), _recognize(recognizer, deg)
    ops = align(ref_phones, deg_phones)
    ref_db, deg_db = log_mel(ref), log_mel(deg)
    evidence = _Evidence(ref_db, deg_db)
    votes = _TextVotes(text, ref_phones, deg_phones)
    events = tuple(_event(edit, evidence, votes) for edit in edit_runs(ops))
    return ContentReport(phone_error_rate(ops), events, len(ref) / RATE, len(ref_phones),
                         f"{recognizer.name} {recognizer.version}")


def _event(edit: Edit, evidence: "_Evidence", votes: "_TextVotes") -> ContentEvent:
    change, quality = evidence.at(edit.start, edit.end)
    logit = (change - CHANGE_DB) / CHANGE_SLOPE_DB - TEXT_VETO * votes.towards_text(edit)
    confidence = 1.0 / (1.0 + math.exp(-logit))
    return ContentEvent(
        start=round(edit.start, 3), end=round(edit.end, 3),
        ref_phones=" ".join(p.label for p in edit.ref), deg_phones=" ".join(p.label for p in edit.deg),
        confidence=round(confidence, 4), local_quality=round(quality, 2), change_db=round(change, 2),
        flagged=confidence >= 0.5 and quality >= QUALITY_DB,
    )


class _Evidence:
    """Per-frame content change and quality of one (ref, deg) pair, read out per event."""

    def __init__(self, ref_db: np.ndarray, deg_db: np.ndarray):
        self.change = np.convolve(content_change(ref_db, deg_db), np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES, "same")
        self.quality = spectral_snr(ref_db, deg_db)
        self.active = active_frames(ref_db, deg_db)

    def at(self, start: float, end: float) -> tuple[float, float]:
        """(largest change in the widened span, mean quality of the active context around it)."""
        n = len(self.change)
        span = frames_between(start - WIDEN, end + WIDEN, n)
        context = np.zeros(n, dtype=bool)
        context[frames_between(start - CONTEXT, end + CONTEXT, n)] = True
        context[span] = False
        context &= self.active
        if not context.any():  # a short item that is all event: judge it by its own frames
            context[span] = True
        return float(self.change[span].max()), float(self.quality[context].mean())


class _TextVotes:
    """Which recognized phones agree with the text's dictionary phones (nothing without text)."""

    def __init__(self, text: str | None, ref: list[Phone], deg: list[Phone]):
        self.agree: set[int] = set()
        if not _english(text):
            return
        expected = text_phones(text, skip_unknown=True)  # a vote, so a rare word may go
        for phones in (ref, deg):
            pairs = align_labels(expected, [p.label for p in phones])
            self.agree |= {id(phones[j]) for i, j in pairs
                           if i is not None and j is not None and expected[i] == phones[j].label}

    def towards_text(self, edit: Edit) -> float:
        """0-1: how much more of the decoded phones than of the reference's agree with the text."""
        return max(0.0, self._share(edit.deg) - self._share(edit.ref))

    def _share(self, phones: tuple[Phone, ...]) -> float:
        return sum(id(p) in self.agree for p in phones) / len(phones) if phones else 0.0


def _english(text: str | None) -> bool:
    """Whether the CMU dictionary knows enough of `text` for its phones to be worth a vote."""
    found = words(text or "")
    return bool(found) and sum(pronunciation(w) is not None for w in found) >= TEXT_COVERAGE * len(found)


_cache: OrderedDict = OrderedDict()


def forget_phones() -> None:
    """Empty this process's memo of recognized phones (for timing a cold start)."""
    _cache.clear()


def _recognize(recognizer: PhoneRecognizer, x: np.ndarray) -> list[Phone]:
    """Recognize with a small per-process memo: the same samples always give the same phones."""
    key = (recognizer.name, recognizer.version, hashlib.sha1(np.ascontiguousarray(x, dtype=np.float64)).hexdigest())
    if key not in _cache:
        _cache[key] = recognizer.recognize(Audio(x, RATE))
        while len(_cache) > PHONE_CACHE:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return _cache[key]
