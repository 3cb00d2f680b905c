"""Content fidelity: phone error rate and phoneme hallucinations per minute (evalkit.content)."""

from __future__ import annotations

import math

import numpy as np

from ..audio import Audio
from ..content import ContentReport, analyze
from ..errors import MetricError
from .base import METRICS, MetricSpec, metric
from .wrapper import _prepare

__all__ = ["phoneme", "content_events", "EVENT_FIELDS"]

RATE = 16000  # the recognizer's rate
EVENT_FIELDS = ("start", "end", "ref_phones", "deg_phones", "confidence", "local_quality", "flagged")


@metric(MetricSpec(
    name="phoneme", version="1", higher_is_better=False, needs_reference=True,
    sample_rates=(RATE,), min_duration=0.5, package="pocketsphinx", outputs=("per", "hallucinations_per_min"),
    description="Phone error rate of the decoded audio against the reference's phones (PocketSphinx "
                "phone loop, time-constrained alignment) and phoneme hallucinations per minute: confident "
                "phone changes where the decoded audio is locally clean",
    requires=("pocketsphinx",), install="pip install pocketsphinx==5.1.1",
    uses_text=True, noise_blind=("hallucinations_per_min",),
))
def phoneme(ref: np.ndarray, deg: np.ndarray, sample_rate: int, text: str | None = None) -> dict[str, float]:
    report = _report(ref, deg, text)
    return {"per": report.per, "hallucinations_per_min": report.hallucinations_per_min}


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
