"""Signal-level distortion measures: SI-SDR, log-spectral distance, mel-cepstral distortion (with DTW)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

import numpy as np

from .base import MetricSpec, metric

__all__ = ["si_sdr", "lsd", "mcd", "mcd_dtw", "dtw"]

POWER_FLOOR = 1e-10  # -100 dB re. a full-scale sine's bin power: keeps log(0) out of LSD
MCD_ORDER = 24
MCD_FRAME = 512  # 32 ms at 16 kHz (a power of two for SPTK's FFT)
MCD_HOP = 80  # 5 ms
DB_PER_NEPER = 10.0 / np.log(10.0)
CEPSTRUM_FLOOR = 1e-8  # added to the periodogram so digitally silent frames stay finite


@metric(
    MetricSpec(
        name="si_sdr",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=None,
        min_duration=0.1,
        package=None,
        outputs=("si_sdr",),
        description="Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), zero-mean signals",
    )
)
def si_sdr(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    ref = ref - ref.mean()
    deg = deg - deg.mean()
    target = (deg @ ref) / (ref @ ref) * ref
    target_energy = target @ target
    residual = deg - target
    # Identical signals would give +inf; flooring the residual at float64 rounding caps them at ~156.5 dB.
    residual_energy = max(residual @ residual, np.finfo(np.float64).eps * target_energy)
    return float(10 * np.log10(target_energy / residual_energy))


def _log_power(x: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import stft

    size = int(round(0.032 * rate))
    _, _, spec = stft(x, rate, window="hann", nperseg=size, noverlap=size * 3 // 4, scaling="spectrum")
    return 10 * np.log10(np.maximum(np.abs(spec) ** 2, POWER_FLOOR))


@metric(
    MetricSpec(
        name="lsd",
        version="1",
        higher_is_better=False,
        needs_reference=True,
        sample_rates=None,
        min_duration=0.1,
        package=None,
        outputs=("lsd",),
        description="Log-spectral distance in dB at the input rate (full band): 32 ms Hann, 8 ms hop, RMS over bins, mean over frames",
        scores_silence=True,
    )
)
def lsd(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    diff = _log_power(ref, sample_rate) - _log_power(deg, sample_rate)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def _mel_cepstrum(x: np.ndarray, rate: int) -> np.ndarray:
    """(frames, MCD_ORDER + 1) mel-cepstra: the real cepstrum of each frame's log spectrum, warped onto
    the mel scale by SPTK's all-pass frequency transform (linear, so one matrix for every frame)."""
    frames = np.lib.stride_tricks.sliding_window_view(x, MCD_FRAME)[::MCD_HOP] * np.blackman(MCD_FRAME)
    log_spectrum = 0.5 * np.log(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + CEPSTRUM_FLOOR)
    cepstrum = np.fft.irfft(log_spectrum, axis=1)[:, : MCD_FRAME // 2]
    return cepstrum @ _warp(rate).T


@lru_cache(maxsize=4)
def _warp(rate: int) -> np.ndarray:
    """The (MCD_ORDER + 1, MCD_FRAME // 2) matrix of pysptk.freqt from linear to mel-warped cepstra."""
    import pysptk

    alpha = pysptk.util.mcepalpha(rate)
    return np.stack([pysptk.freqt(unit, MCD_ORDER, alpha) for unit in np.eye(MCD_FRAME // 2)], axis=1)


def _distance_rows(ref: np.ndarray, deg: np.ndarray, rate: int) -> Iterator[np.ndarray]:
    """Row i: MCD in dB between reference frame i and every decoded frame (c0 excluded); one row at
    a time, so a long pair never holds the whole frames x frames table."""
    a, b = _mel_cepstrum(ref, rate)[:, 1:], _mel_cepstrum(deg, rate)[:, 1:]
    b_energy = (b**2).sum(axis=1)
    for row in a:
        yield DB_PER_NEPER * np.sqrt(2.0 * np.maximum(row @ row + b_energy - 2.0 * (b @ row), 0.0))


# What both mel-cepstral distortions declare.
MCD_FIELDS = dict(
    higher_is_better=False,
    needs_reference=True,
    sample_rates=(16000,),
    min_duration=0.1,
    package="pysptk",
    requires=("pysptk",),
    install="pip install pysptk==1.0.1",
    scores_silence=True,
)


@metric(
    MetricSpec(
        name="mcd",
        version="2",
        outputs=("mcd",),
        **MCD_FIELDS,
        description="Mel-cepstral distortion in dB at 16 kHz: order-24 mel-cepstra (frequency-warped real cepstra, "
        "alpha 0.42, 32 ms Blackman frames, 5 ms hop; c0 excluded), frame by frame (inputs are aligned)",
    )
)
def mcd(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    diff = _mel_cepstrum(ref, sample_rate)[:, 1:] - _mel_cepstrum(deg, sample_rate)[:, 1:]
    return float(np.mean(DB_PER_NEPER * np.sqrt(2.0 * np.sum(diff**2, axis=1))))


@metric(
    MetricSpec(
        name="mcd_dtw",
        version="1",
        outputs=("mcd_dtw",),
        **MCD_FIELDS,
        needs_alignment=False,
        description="Mel-cepstral distortion in dB (as mcd) along the dynamic-time-warping path between the two "
        "frame sequences (steps right, down, diagonal): for outputs whose timing drifts, e.g. generative codecs",
    )
)
def mcd_dtw(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    total, steps = dtw(_distance_rows(ref, deg, sample_rate))
    return float(total / steps)


def dtw(cost: Iterable[np.ndarray]) -> tuple[float, int]:
    """(total cost, steps) of the cheapest monotonic path (right, down, diagonal) through the rows of
    `cost`, from the first cell to the last; ties go to the shorter path.

    Row by row, vectorised and in O(columns) memory: within a row, a run of horizontal steps adds
    that row's costs, so the row is a running minimum of (entry from above or diagonal - prefix
    sum) + prefix sum; the step count follows the cell where that minimum was reached.
    """
    rows = iter(cost)
    first = np.asarray(next(rows), dtype=np.float64)
    columns = np.arange(first.size)
    total, steps = np.cumsum(first), columns + 1
    for row in rows:
        row = np.asarray(row, dtype=np.float64)
        diagonal = np.concatenate(([np.inf], total[:-1]))
        from_diagonal = diagonal <= total
        entry = row + np.minimum(total, diagonal)
        entry_steps = np.where(from_diagonal, np.concatenate(([0], steps[:-1])), steps) + 1
        prefix = np.cumsum(row)
        shifted = entry - prefix
        best = np.minimum.accumulate(shifted)
        start = np.maximum.accumulate(np.where(shifted <= best, columns, 0))  # where the run of right steps began
        total, steps = best + prefix, entry_steps[start] + columns - start
    return float(total[-1]), int(steps[-1])
