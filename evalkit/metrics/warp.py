"""WARP-Q (Jassim et al. 2021/2022): subsequence-DTW distance of MFCC patches, for generative codecs."""

from __future__ import annotations

from functools import cache

import numpy as np

from ..errors import MetricError
from .base import MetricSpec, metric

__all__ = ["warpq"]

PATCH_SECONDS = 0.4  # warpq's default patch size


def _numpy2_shim() -> None:
    """warpq 1.5.2 (cmvnw) and pyvad call `np.lib.pad`, an alias NumPy 2 removed.

    Restoring the alias (to the same `np.pad`) in this process is the whole fix; nothing under
    site-packages is touched.
    """
    if not hasattr(np.lib, "pad"):
        np.lib.pad = np.pad


@cache
def _model():
    _numpy2_shim()
    from warpq.core import warpqMetric

    return warpqMetric(sr=16000, apply_vad=True, score_fn="median", n_jobs=1)


@metric(
    MetricSpec(
        name="warpq",
        version="1",
        higher_is_better=False,
        needs_reference=True,
        sample_rates=(16000,),
        min_duration=1.0,
        package="warpq",
        outputs=("warpq",),
        description="WARP-Q raw score (median SDTW cost of 0.4 s MFCC patches after VAD); 0 is best, ~3.5 worst",
        requires=("warpq", "librosa", "pyvad"),
        install="pip install warpq==1.5.2",
        needs_alignment=False,  # its subsequence DTW finds the alignment itself
    )
)
def warpq(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    # pyvad refuses float samples outside [-1, 1]; clip as a 16-bit file would.
    result = _model().evaluate(np.clip(ref, -1, 1), np.clip(deg, -1, 1), arr_sr=sample_rate)
    score = result["raw_warpq_score"]
    if not np.isfinite(score):  # warpq returns NaN when VAD leaves less than one patch
        raise MetricError(f"WARP-Q: less than {PATCH_SECONDS} s of speech left after voice-activity detection")
    return score
