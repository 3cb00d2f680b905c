"""Content checks for one item: phone error rate, hallucination events and how much could be judged.

An edit between the reference's and the decoded audio's phones becomes a hallucination flag
when three voices agree: the recognizer heard different phones (phone identity), the spectra
really changed there (`shifted_change`: noise, codec colouring and a little timing difference
taken out, so a second take or a decoder with its own timing is not a change), and the decoded
audio there is clear enough to judge (`clarity`, read from the decoded audio alone, never from
its fidelity to the reference, which a generative decoder does not have by design). Where too
little of the speech is clear, the item is "not judged" and its rate is withheld, never 0.

Text, when known and English, can veto: a change towards the text means the recognizer
misheard the reference. (A change away from the text is also what recognizer jitter looks
like, so it earns no extra confidence.)
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..audio import Audio
from .align import Edit, align, align_labels, edit_runs, phone_error_rate
from .clarity import JUDGE_DB, clarity
from .lexicon import pronunciation, text_phones, words
from .phones import Phone, PhoneRecognizer, make_recognizer
from .spectra import HOP_SECONDS, RATE, frames_between, log_mel, shifted_change

__all__ = ["ContentEvent", "ContentReport", "analyze", "forget_phones", "CHANGE_DB", "MIN_JUDGED",
           "DEFAULT_RECOGNIZER"]

DEFAULT_RECOGNIZER = "pocketsphinx"
# Calibrated on the project's validation set (benchmarks/bench_hallucination.py prints the result).
CHANGE_DB = 5.5  # content change (dB) at which an event's confidence is 0.5
CHANGE_SLOPE_DB = 1.0  # dB per logit unit: how quickly confidence rises past CHANGE_DB
MAX_SHIFT = 0.05  # seconds: the same phone said this much earlier or later is no change
MIN_JUDGED = 0.5  # share of the reference's speech that must be clear for the item to be judged
TEXT_VETO = 1.5  # logit units a change fully towards the text loses
TEXT_COVERAGE = 0.8  # share of the text's words the dictionary must know (else: not English; ignored)
WIDEN = 0.05  # seconds each side of an edit searched for the change (phone boundaries are rough)
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
    local_quality: float  # dB, clarity of the decoded audio there (non-intrusive)
    change_db: float  # how far the spectra moved there, at the best nearby timing
    judged: bool  # clear enough to judge
    flagged: bool  # a hallucination: a confident change where the decoded audio is clear


@dataclass(frozen=True)
class ContentReport:
    """Everything the checks found in one item."""

    per: float
    events: tuple[ContentEvent, ...]
    duration: float  # seconds
    ref_phones: int
    recognizer: str  # name and version
    judged_fraction: float  # share of the reference's speech where the decoded audio is clear

    @property
    def judged(self) -> bool:
        return self.judged_fraction >= MIN_JUDGED

    @property
    def hallucinations(self) -> int:
        return sum(e.flagged for e in self.events)

    @property
    def hallucinations_per_min(self) -> float:
        """Flags per minute of judged audio; NaN when the item is not judged (never a made-up 0)."""
        if not self.judged:
            return math.nan
        return 60.0 * self.hallucinations / (self.duration * self.judged_fraction)


def analyze(ref: np.ndarray, deg: np.ndarray, text: str | None = None,
            recognizer: PhoneRecognizer | None = None) -> ContentReport:
    """Compare mono 16 kHz `ref` and `deg` (aligned in time; lengths may differ a little);
    deterministic for the same input."""
    recognizer = recognizer or make_recognizer(DEFAULT_RECOGNIZER)
    ref, deg = np.asarray(ref, dtype=np.float64), np.asarray(deg, dtype=np.float64)
    ref_phones, deg_phones = _recognize(recognizer, ref), _recognize(recognizer, deg)
    ops = align(ref_phones, deg_phones)
    clear = clarity(deg)
    change = _smoothed_change(ref, deg)
    votes = _TextVotes(text, ref_phones, deg_phones)
    events = tuple(_event(edit, change, clear, votes) for edit in edit_runs(ops))
    return ContentReport(phone_error_rate(ops), events, len(ref) / RATE, len(ref_phones),
                         f"{recognizer.name} {recognizer.version}", _judged_fraction(ref_phones, clear))


def _smoothed_change(ref: np.ndarray, deg: np.ndarray) -> np.ndarray:
    """(shifts, frames) content change, each shift smoothed over SMOOTH_FRAMES."""
    shifts = shifted_change(log_mel(ref), log_mel(deg), int(round(MAX_SHIFT / HOP_SECONDS)))
    kernel = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES
    return np.stack([np.convolve(np.nan_to_num(row, posinf=1e3), kernel, "same") for row in shifts])


def _event(edit: Edit, change: np.ndarray, clear: np.ndarray, votes: "_TextVotes") -> ContentEvent:
    span = frames_between(edit.start - WIDEN, edit.end + WIDEN, change.shape[1])
    change_db = float(change[:, span].max(axis=1).min())  # the timing that explains the most away
    logit = (change_db - CHANGE_DB) / CHANGE_SLOPE_DB - TEXT_VETO * votes.towards_text(edit)
    confidence = 1.0 / (1.0 + math.exp(-logit))
    quality = float(np.mean(clear[_frames(edit.start, edit.end, clear.size)]))
    judged = quality >= JUDGE_DB
    return ContentEvent(
        start=round(edit.start, 3), end=round(edit.end, 3),
        ref_phones=" ".join(p.label for p in edit.ref), deg_phones=" ".join(p.label for p in edit.deg),
        confidence=round(confidence, 4), local_quality=round(quality, 2), change_db=round(change_db, 2),
        judged=judged, flagged=judged and confidence >= 0.5,
    )


def _judged_fraction(ref_phones: list[Phone], clear: np.ndarray) -> float:
    """Share of the reference's phone frames where the decoded audio's clarity reaches JUDGE_DB."""
    speech = np.zeros(max(clear.size, 1), dtype=bool)
    for phone in ref_phones:
        speech[_frames(phone.start, phone.end, speech.size)] = True
    if not ref_phones or not speech.any():
        return 0.0
    return float(np.mean(clear[speech[: clear.size]] >= JUDGE_DB))


def _frames(start: float, end: float, n: int) -> slice:
    first = min(max(0, int(start / HOP_SECONDS)), max(n - 1, 0))
    return slice(first, max(first + 1, min(n, int(math.ceil(end / HOP_SECONDS)))))


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
