"""Content fidelity: phone error rate, phoneme hallucinations per minute and the judged fraction."""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np

from ..audio import Audio
from ..content import ContentReport, analyze
from ..content.asr import error_rates, transcribe
from ..content.detector import MIN_JUDGED
from ..content.lexicon import words
from ..errors import MetricError
from .base import METRICS, MetricSpec, Withheld, metric
from .wrapper import _prepare

__all__ = ["phoneme", "asr_mismatch", "wer", "content_events", "EVENT_FIELDS"]

RATE = 16000  # the recognizer's rate
EVENT_FIELDS = ("start", "end", "ref_phones", "deg_phones", "confidence", "local_quality", "flagged")


@metric(
    MetricSpec(
        name="phoneme",
        version="4",
        higher_is_better=False,
        needs_reference=True,
        sample_rates=(RATE,),
        min_duration=0.5,
        package="pocketsphinx",
        outputs=("per", "hallucinations_per_min", "judged_fraction"),
        description="Phone error rate of the decoded audio against the reference's phones (PocketSphinx "
        "phone loop, time-constrained alignment); phoneme hallucinations per judged minute: phone "
        "changes the spectral envelopes confirm once both are aligned by content (a second take's or a "
        "decoder's own timing, level and colouring forgiven) where the decoded audio is clear and the "
        "codec's own envelope distortion is small; and the share of the speech that can be judged (the "
        "rate is withheld, as not judged, below half: low-rate and neural codecs that reshape every "
        "spectrum)",
        requires=("pocketsphinx",),
        install="pip install pocketsphinx==5.1.1",
        uses_text=True,
        noise_blind=("hallucinations_per_min",),
        higher_is_better_outputs=("judged_fraction",),
    )
)
def phoneme(ref: np.ndarray, deg: np.ndarray, sample_rate: int, text: str | None = None) -> dict:
    report = _report(ref, deg, text)
    rate = (
        report.hallucinations_per_min
        if report.judged
        else Withheld(
            f"not judged: only {100 * report.judged_fraction:.0f}% of the speech is clear and close enough to judge "
            f"(needs {100 * MIN_JUDGED:.0f}%)"
        )
    )
    return {"per": report.per, "hallucinations_per_min": rate, "judged_fraction": report.judged_fraction}


def content_events(ref: Audio, deg: Audio, text: str | None = None) -> list[dict]:
    """The item's events as rows for the content_events table (EVENT_FIELDS; times in seconds).

    Prepares the audio exactly as `evaluate("phoneme", ...)` does, so right after that call the
    recognition is reused from the per-process memo. Raises MetricError when the metric would fail.
    """
    ref_x, deg_x = _prepare(METRICS.get("phoneme").spec, ref, deg, RATE)
    return [{field: getattr(event, field) for field in EVENT_FIELDS} for event in _report(ref_x, deg_x, text).events]


def _report(ref: np.ndarray, deg: np.ndarray, text: str | None) -> ContentReport:
    report = analyze(ref, deg, text)
    if report.ref_phones == 0 or math.isnan(report.per):
        raise MetricError("the recognizer found no phones in the reference; is it speech?")
    return report


ASR_INSTALL = "pip install pocketsphinx==5.1.1 jiwer==4.0.0"


@metric(
    MetricSpec(
        name="asr_mismatch",
        version="1",
        higher_is_better=False,
        needs_reference=True,
        sample_rates=(RATE,),
        min_duration=0.5,
        package="pocketsphinx",
        outputs=("wer_asr", "cer_asr"),
        description="ASR mismatch: word and character error rates (jiwer) of the words PocketSphinx's bundled US "
        "English model recognises in the decoded audio against those it recognises in the reference",
        requires=("pocketsphinx", "jiwer"),
        install=ASR_INSTALL,
        needs_alignment=False,
    )
)
def asr_mismatch(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    reference = transcribe(ref)
    if not reference:
        raise MetricError("the recognizer found no words in the reference; is it English speech?")
    wer, cer = error_rates(reference, transcribe(deg))
    return {"wer_asr": wer, "cer_asr": cer}


@metric(
    MetricSpec(
        name="wer",
        version="2",  # 2: text with digits or other scripts withheld, accents folded
        higher_is_better=False,
        needs_reference=False,
        sample_rates=(RATE,),
        min_duration=0.5,
        package="pocketsphinx",
        outputs=("wer", "cer"),
        description="True word and character error rates (jiwer) of PocketSphinx's bundled US English model on the "
        "decoded audio against the manifest's text; skipped for items without text",
        requires=("pocketsphinx", "jiwer"),
        install=ASR_INSTALL,
        uses_text=True,
    )
)
def wer(ref: None, deg: np.ndarray, sample_rate: int, text: str | None = None) -> dict:
    scorable = _english_text(text or "")
    if isinstance(scorable, Withheld):
        return {"wer": scorable, "cer": scorable}
    value, cer = error_rates(scorable, transcribe(deg))
    return {"wer": value, "cer": cer}


def _english_text(text: str) -> str | Withheld:
    """The manifest's text as the recogniser would write it, or why it cannot be compared with it.

    Accents are folded (café → cafe). Digits and letters of other scripts are refused rather than
    dropped: the recogniser says "nine one one" where the text has 911, and each would count as an error."""
    folded = unicodedata.normalize("NFKD", text)
    if not text.strip():
        return Withheld("the item has no text in the manifest: true WER needs one")
    if digits := re.findall(r"\d+", folded):
        return Withheld(
            f"the item's text has digits ({', '.join(digits[:3])}): the recogniser writes numbers as words, "
            "so spell them out as spoken in the manifest"
        )
    if foreign := sorted({c for c in folded if c.isalpha() and not c.isascii()}):
        return Withheld(
            f"the item's text has letters outside English's alphabet ({''.join(foreign[:5])}): "
            "the recogniser is US English; true WER needs the English words spoken"
        )
    ascii_text = folded.encode("ascii", "ignore").decode()
    if not words(ascii_text):
        return Withheld("the item's text has no words, only punctuation or symbols: true WER needs the words spoken")
    return ascii_text
