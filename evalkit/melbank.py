"""Triangular mel filterbanks on the HTK mel scale: the one definition that features, metrics and losses share."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["mel_filterbank", "hz_to_mel", "mel_to_hz"]


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=32)
def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    low_hz: float = 0.0,
    high_hz: float | None = None,
    unit_area: bool = False,
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangles equally spaced in mel from `low_hz` to `high_hz` (default: Nyquist).

    Peak 1 by default; `unit_area` scales each to unit area (Slaney's norm). Equals
    librosa.filters.mel(..., htk=True, norm=None or "slaney") in float64 without importing librosa,
    which would pull numba into every process that scores content. Read-only: it is cached."""
    high_hz = sample_rate / 2 if high_hz is None else high_hz
    edges = mel_to_hz(np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0.0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    if unit_area:
        bank *= 2.0 / (upper - lower)
    bank.setflags(write=False)
    return bank
