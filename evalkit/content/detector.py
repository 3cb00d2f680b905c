"""Content checks for one item: phone error rate, hallucination events and how much could be judged.

An edit between the reference's and the decoded audio's phones becomes a hallucination flag
when three voices agree: the recognizer heard different phones (phone identity), the spectral
envelopes really differ there once the two are aligned by their content (`warp`: a second
take or a decoder with its own timing is followed, codec colouring, level and one frame of
smearing are forgiven), and the place can be judged. A place is judged when the decoded audio
there is clear (`clarity`, read from the decoded audio alone) and the codec's own distortion
around it is small enough for a phone change to stand out: a low running percentile of the
envelope distance over a second of speech, which is small for every waveform codec and for a
generative decoder that says the same phones, and large where a low-rate codec reshapes every
spectrum (there, a changed phone and the codec's ordinary work look alike, so nothing is
claimed). Where too little of the speech can be judged, the item is "not judged" and its rate
is withheld, never 0.

Text, when known and English, can veto: a change towards the text means the recognizer
misheard the reference. (A change away from the text is also what recognizer jitter looks
like, so it earns no extra confidence.)
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import Audio
from .align import Edit, align, align_labels, edit_runs, phone_error_rate
from .clarity import JUDGE_DB, clarity_of_spectra
from .lexicon import pronunciation, text_phones, words
from .phones import Phone, PhoneRecognizer, make_recognizer
from .spectra import HOP_SECONDS, RATE, frame_power, frames_between, log_mel, mel_db
from .store import PhoneStore, phone_key
from .warp import ContentWarp, warp

__all__ = [
    "ContentEvent",
    "ContentReport",
    "analyze",
    "forget_phones",
    "share_reference_phones",
    "CHANGE_DB",
    "DISTORTION_DB",
    "MIN_JUDGED",
    "DEFAULT_RECOGNIZER",
]

DEFAULT_RECOGNIZER = "pocketsphinx"
# Calibrated on the project's validation set (benchmarks/bench_hallucination.py prints the result).
CHANGE_DB = 1.2  # envelope change (dB) at which an event's confidence is 0.5
CHANGE_SLOPE_DB = 0.3  # dB per logit unit: how quickly confidence rises past CHANGE_DB
# A single phone inserted or dropped needs a larger change: on unflipped second takes and their
# coded copies that is how a vowel held a little shorter or longer, or a stop released a little
# differently, comes out of the recognizer (2.4-2.9 dB), while a changed word substitutes
# phones. Chosen on the tuning third of the validation takes (bench_hallucination's subset).
INDEL_CHANGE_DB = 3.0
# Judged where the codec's own distortion nearby stays well below CHANGE_DB: the median over
# an item's speech is 0.0-0.3 dB for waveform codecs at 12 kbit/s and up and for second takes,
# 0.5-0.9 for AMR-NB 4.75 and 0.8-1.9 for Codec2 1600 and RVQ 3k, where a changed phone and
# the codec's ordinary work are as large (detection there was at chance: 100+ flags/min).
DISTORTION_DB = 0.3
# A low percentile rather than the median: the codec's distortion is everywhere, a changed word
# only in part of the window, so a hallucination cannot make its own place "not judged".
DISTORTION_PERCENTILE = 30
DISTORTION_SECONDS = 0.5  # each side: the running percentile over about two syllables of speech
MIN_JUDGED = 0.5  # share of the reference's speech that must be judged for the item to be judged
TEXT_VETO = 1.5  # logit units a change fully towards the text loses
TEXT_COVERAGE = 0.8  # share of the text's words the dictionary must know (else: not English; ignored)
WIDEN = 0.03  # seconds each side of an edit searched for the change (phone boundaries are rough)
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
    change_db: float  # how far the spectral envelope moved there, the two aligned by content
    distortion_db: float  # the codec's own envelope distance around it (running low percentile)
    judged: bool  # clear, and the codec's distortion around it small enough to see a change
    flagged: bool  # a hallucination: a confident change where it can be judged


@dataclass(frozen=True)
class ContentReport:
    """Everything the checks found in one item."""

    per: float
    events: tuple[ContentEvent, ...]
    duration: float  # seconds
    ref_phones: int
    recognizer: str  # name and version
    judged_fraction: float  # share of the reference's speech that can be judged

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


def analyze(
    ref: np.ndarray, deg: np.ndarray, text: str | None = None, recognizer: PhoneRecognizer | None = None
) -> ContentReport:
    """Compare mono 16 kHz `ref` and `deg` (roughly aligned; lengths and timing may differ, the
    content alignment follows them); deterministic for the same input. Event times are the
    reference's."""
    recognizer = recognizer or make_recognizer(DEFAULT_RECOGNIZER)
    ref, deg = np.asarray(ref, dtype=np.float64), np.asarray(deg, dtype=np.float64)
    ref_phones, deg_phones = _recognize(recognizer, ref, shared=True), _recognize(recognizer, deg)
    deg_power = frame_power(deg)  # the decoded audio's spectra serve both the warp and its clarity
    deg_db = mel_db(deg_power)
    path = warp(log_mel(ref), deg_db)
    ops = align(ref_phones, [_on_ref_time(p, path) for p in deg_phones])
    evidence = _Evidence(path, clarity_of_spectra(deg_power, deg_db), ref_phones)
    votes = _TextVotes(text, ref_phones, deg_phones)
    events = tuple(_event(edit, evidence, votes) for edit in edit_runs(ops))
    return ContentReport(
        phone_error_rate(ops),
        events,
        len(ref) / RATE,
        len(ref_phones),
        f"{recognizer.name} {recognizer.version}",
        evidence.judged_fraction(),
    )


def _on_ref_time(phone: Phone, path: ContentWarp) -> Phone:
    """A decoded phone with its times mapped onto the reference's (at least one frame long)."""
    start = path.to_ref_seconds(phone.start)
    end = max(path.to_ref_seconds(phone.end), start + HOP_SECONDS)
    return Phone(phone.label, round(start, 3), round(end, 3), phone.confidence)


class _Evidence:
    """Per reference frame: the envelope change, the decoded audio's clarity there, the codec's
    distortion around it, and whether the place can be judged."""

    def __init__(self, path: ContentWarp, deg_clarity: np.ndarray, ref_phones: list[Phone]):
        n = path.change.size
        self.change = path.change
        counts = np.maximum(np.bincount(path.ref_frames, minlength=n), 1)
        deg_frames = np.minimum(path.deg_frames, deg_clarity.size - 1)
        self.clarity = np.bincount(path.ref_frames, deg_clarity[deg_frames], n) / counts
        self.speech = np.zeros(n, dtype=bool)
        for phone in ref_phones:
            self.speech[_frames(phone.start, phone.end, n)] = True
        self.distortion = _running_percentile(self.change, self.speech, int(round(DISTORTION_SECONDS / HOP_SECONDS)))
        self.judgeable = (self.clarity >= JUDGE_DB) & (self.distortion <= DISTORTION_DB)

    def judged_fraction(self) -> float:
        """Share of the reference's phone frames that can be judged (0 without phones)."""
        return float(np.mean(self.judgeable[self.speech])) if self.speech.any() else 0.0


def _running_percentile(values: np.ndarray, speech: np.ndarray, half: int) -> np.ndarray:
    """DISTORTION_PERCENTILE of `values` over the 2 * half + 1 nearest speech frames of each frame
    (pauses skipped)."""
    from scipy.ndimage import percentile_filter  # lazy: every worker imports the metrics, few run this one

    if not speech.any():
        return np.full(values.size, np.inf)
    spoken = np.flatnonzero(speech)
    low = percentile_filter(values[spoken], DISTORTION_PERCENTILE, size=2 * half + 1, mode="nearest")
    nearest = np.clip(np.searchsorted(spoken, np.arange(values.size)), 0, spoken.size - 1)
    return low[nearest]


def _event(edit: Edit, evidence: _Evidence, votes: _TextVotes) -> ContentEvent:
    n = evidence.change.size
    change_db = float(evidence.change[frames_between(edit.start - WIDEN, edit.end + WIDEN, n)].max())
    threshold = INDEL_CHANGE_DB if len(edit.ref) + len(edit.deg) == 1 else CHANGE_DB
    logit = (change_db - threshold) / CHANGE_SLOPE_DB - TEXT_VETO * votes.towards_text(edit)
    confidence = 1.0 / (1.0 + math.exp(-logit))
    span = _frames(edit.start, edit.end, n)
    quality, distortion = float(np.mean(evidence.clarity[span])), float(np.median(evidence.distortion[span]))
    judged = quality >= JUDGE_DB and distortion <= DISTORTION_DB
    return ContentEvent(
        start=round(edit.start, 3),
        end=round(edit.end, 3),
        ref_phones=" ".join(p.label for p in edit.ref),
        deg_phones=" ".join(p.label for p in edit.deg),
        confidence=round(confidence, 4),
        local_quality=round(quality, 2),
        change_db=round(change_db, 2),
        distortion_db=round(distortion, 2),
        judged=judged,
        flagged=judged and confidence >= 0.5,
    )


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
            self.agree |= {
                id(phones[j]) for i, j in pairs if i is not None and j is not None and expected[i] == phones[j].label
            }

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
_store: PhoneStore | None = None


def share_reference_phones(root: str | Path | None) -> None:
    """Keep references' phones in `root` (a run's cache folder) for every worker and later run;
    None: this process's memo only. The phones are the same either way: only the time changes."""
    global _store
    _store = None if root is None else PhoneStore(root)


def forget_phones() -> None:
    """Empty this process's memo of recognized phones (for timing a cold start)."""
    _cache.clear()


def _recognize(recognizer: PhoneRecognizer, x: np.ndarray, shared: bool = False) -> list[Phone]:
    """Recognize with a small per-process memo, and for a reference (`shared`) the run's phone
    store: the same samples always give the same phones (a fresh decoder for every call)."""
    digest = hashlib.sha1(np.ascontiguousarray(x, dtype=np.float64)).hexdigest()
    key = (recognizer.name, recognizer.version, digest)
    if key not in _cache:
        _cache[key] = _recognize_shared(recognizer, x, digest) if shared else recognizer.recognize(Audio(x, RATE))
        while len(_cache) > PHONE_CACHE:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return _cache[key]


def _recognize_shared(recognizer: PhoneRecognizer, x: np.ndarray, digest: str) -> list[Phone]:
    store = _store
    if store is None:
        return recognizer.recognize(Audio(x, RATE))
    key = phone_key(recognizer.name, recognizer.version, digest)
    phones = store.get(key)
    if phones is None:
        phones = recognizer.recognize(Audio(x, RATE))
        store.put(key, phones)
    return phones
