"""Intrusive intelligibility: STOI and extended STOI (pystoi, computed at 10 kHz)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import MetricError
from .base import MetricSpec, metric

__all__ = ["stoi", "estoi"]

# pystoi resamples to 10 kHz itself with the reference MATLAB filter, so common rates at or
# above 10 kHz pass through untouched; 8 kHz input is upsampled to 10 kHz by the wrapper
# (its top third-octave band, up to ~4.3 kHz, is then empty, as it is in the signal).
STOI_RATES = (10000, 16000, 22050, 24000, 32000, 44100, 48000)
INSTALL = "pip install pystoi==0.4.1"


def _stoi(ref: np.ndarray, deg: np.ndarray, rate: int, extended: bool) -> float:
    from pystoi import stoi as pystoi_stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = pystoi_stoi(ref, deg, rate, extended=extended)
    for warning in caught:
        # pystoi returns a made-up 1e-5 when too little speech survives its silence removal.
        if "Not enough STFT frames" in str(warning.message):
            raise MetricError(
                "STOI: fewer than 30 frames of reference speech after removing silent frames (needs ~0.4 s of speech)"
            )
    return value


@metric(
    MetricSpec(
        name="stoi",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=STOI_RATES,
        min_duration=0.5,
        package="pystoi",
        outputs=("stoi",),
        description="Short-Time Objective Intelligibility (Taal et al. 2011); 0-1",
        requires=("pystoi",),
        install=INSTALL,
    )
)
def stoi(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    return _stoi(ref, deg, sample_rate, extended=False)


@metric(
    MetricSpec(
        name="estoi",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=STOI_RATES,
        min_duration=0.5,
        package="pystoi",
        outputs=("estoi",),
        description="Extended STOI (Jensen & Taal 2016), robust to modulated noise; about 0-1",
        requires=("pystoi",),
        install=INSTALL,
    )
)
def estoi(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    return _stoi(ref, deg, sample_rate, extended=True)
