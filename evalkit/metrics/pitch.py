"""Pitch fidelity: F0 RMSE in cents, F0 correlation and voicing decision error (RAPT via pysptk)."""

from __future__ import annotations

import numpy as np

from ..errors import MetricError
from .base import MetricSpec, Withheld, metric

__all__ = ["f0"]

HOP_SECONDS = 0.005
F0_RANGE = (50.0, 500.0)  # Hz: low male to high female and child voices
MIN_VOICED_FRAMES = 10  # 50 ms voiced in both signals, or there is no pitch to compare


def _track(x: np.ndarray, rate: int) -> np.ndarray:
    """F0 in Hz per 5 ms frame, 0 where unvoiced."""
    import pysptk

    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.float32)  # RAPT's thresholds assume 16-bit levels
    return pysptk.rapt(
        pcm, fs=rate, hopsize=int(round(HOP_SECONDS * rate)), min=F0_RANGE[0], max=F0_RANGE[1], otype="f0"
    ).astype(np.float64)


@metric(
    MetricSpec(
        name="f0",
        version="1",
        higher_is_better=False,
        needs_reference=True,
        sample_rates=(16000,),
        min_duration=0.2,
        package="pysptk",
        outputs=("f0_rmse_cents", "f0_corr", "vde"),
        description="RAPT pitch (50-500 Hz, 5 ms) of reference and decoded audio: RMS F0 difference in cents and "
        "Pearson correlation of F0 over frames voiced in both, and the voicing decision error (share of "
        "frames whose voiced/unvoiced decision differs)",
        requires=("pysptk",),
        install="pip install pysptk==1.0.1",
        higher_is_better_outputs=("f0_corr",),
    )
)
def f0(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> dict:
    a, b = _track(ref, sample_rate), _track(deg, sample_rate)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    both = (a > 0) & (b > 0)
    if both.sum() < MIN_VOICED_FRAMES:
        raise MetricError(
            f"only {int(both.sum())} frames are voiced in both signals (needs {MIN_VOICED_FRAMES}); "
            "no common pitch to compare"
        )
    cents = 1200 * np.log2(b[both] / a[both])
    return {
        "f0_rmse_cents": float(np.sqrt(np.mean(cents**2))),
        "f0_corr": _correlation(a[both], b[both]),
        "vde": float(np.mean((a > 0) != (b > 0))),
    }


def _correlation(a: np.ndarray, b: np.ndarray) -> float | Withheld:
    if np.std(a) == 0 or np.std(b) == 0:
        return Withheld("F0 is constant in one signal: correlation is undefined")
    return float(np.corrcoef(a, b)[0, 1])
