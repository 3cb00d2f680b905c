"""Signal-level distortion measures: SI-SDR, log-spectral distance and mel-cepstral distortion."""

from __future__ import annotations

import numpy as np

from .base import MetricSpec, metric

__all__ = ["si_sdr", "lsd", "mcd"]

POWER_FLOOR = 1e-10  # -100 dB re. a full-scale sine's bin power: keeps log(0) out of LSD
MCD_ORDER = 24
MCD_FRAME = 512  # 32 ms at 16 kHz (a power of two for SPTK's FFT)
MCD_HOP = 80  # 5 ms
DB_PER_NEPER = 10.0 / np.log(10.0)


@metric(MetricSpec(
    name="si_sdr", version="1", higher_is_better=True, needs_reference=True,
    sample_rates=None, min_duration=0.1, package=None, outputs=("si_sdr",),
    description="Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), zero-mean signals",
))
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


@metric(MetricSpec(
    name="lsd", version="1", higher_is_better=False, needs_reference=True,
    sample_rates=None, min_duration=0.1, package=None, outputs=("lsd",),
    description="Log-spectral distance in dB at the input rate (full band): 32 ms Hann, 8 ms hop, RMS over bins, mean over frames",
    scores_silence=True,
))
def lsd(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    diff = _log_power(ref, sample_rate) - _log_power(deg, sample_rate)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def _mel_cepstrum(x: np.ndarray, rate: int) -> np.ndarray:
    import pysptk

    frames = np.lib.stride_tricks.sliding_window_view(x, MCD_FRAME)[::MCD_HOP] * np.blackman(MCD_FRAME)
    # etype=1 adds a small floor to the periodogram so digitally silent frames stay finite.
    return pysptk.mcep(frames, order=MCD_ORDER, alpha=pysptk.util.mcepalpha(rate), etype=1, eps=1e-8)


@metric(MetricSpec(
    name="mcd", version="1", higher_is_better=False, needs_reference=True,
    sample_rates=(16000,), min_duration=0.1, package="pysptk", outputs=("mcd",),
    description="Mel-cepstral distortion in dB at 16 kHz: order-24 mel-cepstra (c0 excluded), all frames, no DTW (inputs are aligned)",
    requires=("pysptk",), install="pip install pysptk==1.0.1", scores_silence=True,
))
def mcd(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    diff = _mel_cepstrum(ref, sample_rate)[:, 1:] - _mel_cepstrum(deg, sample_rate)[:, 1:]
    return float(np.mean(DB_PER_NEPER * np.sqrt(2.0 * np.sum(diff**2, axis=1))))
