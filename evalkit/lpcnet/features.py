"""LPCNet features of 16 kHz speech: 18 Bark-scale cepstra, pitch period and correlation per 10 ms frame.

Frame k describes samples [160 k, 160 k + 160). Its 20 ms analysis window is centred on it,
[160 k - 80, 160 k + 240), so the features look 80 samples (5 ms) ahead. The signal is
pre-emphasised (1 - 0.85 z^-1) and scaled to 16-bit values first; the band energies of the
windowed spectrum (triangular bands on LPCNet's 18-band Bark-like grid, 0-8 kHz) are turned into
log10 energies and a DCT gives the cepstrum (c0 offset by -4, as in LPCNet).

The LPC of order 16 are not sent: the decoder derives them from the cepstrum
(`lpc_from_cepstrum`: band energies -> interpolated power spectrum -> autocorrelation ->
Levinson-Durbin), together with the excitation's expected RMS. Pitch: pitch.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .framing import FRAME, LOOKAHEAD, LPC_ORDER, RATE, WINDOW, analysis_frames, frame_count
from .pitch import pitch_track

__all__ = [
    "RATE",
    "FRAME",
    "WINDOW",
    "LOOKAHEAD",
    "NB_BANDS",
    "NB_FEATURES",
    "LPC_ORDER",
    "PREEMPHASIS",
    "SCALE",
    "features",
    "cepstra",
    "lpc_from_cepstrum",
    "preemphasis",
    "levinson",
    "analysis_frames",
]

NB_BANDS = 18
NB_FEATURES = NB_BANDS + 2  # cepstra, pitch period (samples at 16 kHz), pitch correlation
PREEMPHASIS = 0.85
SCALE = 32768.0  # features are computed on 16-bit sample values
# Band edges in 200 Hz units (LPCNet's eband5ms), as bins of the 320-point FFT (50 Hz each)
BAND_EDGES = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 34, 40]) * 4
ENERGY_FLOOR = 1e-2
C0_OFFSET = 4.0


def preemphasis(x: np.ndarray, coef: float = PREEMPHASIS) -> np.ndarray:
    """x[n] - coef x[n-1], with x[-1] = 0."""
    out = np.array(x, dtype=np.float64)
    out[1:] -= coef * np.asarray(x, np.float64)[:-1]
    return out


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(WINDOW + 2)[1:-1]  # symmetric Hann without its zero end points


@lru_cache(maxsize=1)
def band_weights() -> np.ndarray:
    """(18, 161): triangular weights of each FFT bin in each band; half triangles at the ends count twice."""
    weights = np.zeros((NB_BANDS, WINDOW // 2 + 1))
    for band in range(NB_BANDS - 1):
        lo, hi = BAND_EDGES[band], BAND_EDGES[band + 1]
        frac = (np.arange(lo, hi) - lo) / (hi - lo)
        weights[band, lo:hi] += 1 - frac
        weights[band + 1, lo:hi] += frac
    weights[-1, -1] += 1
    weights[[0, -1]] *= 2
    return weights


@lru_cache(maxsize=1)
def _interpolation() -> np.ndarray:
    """(18, 161): each bin's power as the linear interpolation between the per-bin mean powers of the
    two bands around it (the triangular weights without the end bands' doubling)."""
    weights = band_weights().copy()
    weights[[0, -1]] /= 2
    return weights


def band_log_energies(xp: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 18) log10 band energies of the pre-emphasised 16-bit signal, with LPCNet's floors:
    no band more than 80 dB below the frame's loudest, nor 25 dB below the band under it."""
    spectrum = np.fft.rfft(analysis_frames(xp, frames) * _window(), axis=1)
    energy = (spectrum.real**2 + spectrum.imag**2) @ band_weights().T
    logs = np.log10(ENERGY_FLOOR + energy)
    follow = np.full(frames, -2.0)
    peak = np.full(frames, -2.0)
    for band in range(NB_BANDS):
        peak = np.maximum(peak, logs[:, band])
        follow = np.maximum(follow - 2.5, logs[:, band])
        logs[:, band] = np.maximum(peak - 8.0, np.maximum(follow - 2.5, logs[:, band]))
    return logs


def cepstra(xp: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 18) Bark cepstra of a pre-emphasised 16-bit signal."""
    from scipy.fft import dct  # here: listing the codecs must not import scipy

    ceps = dct(band_log_energies(xp, frames), type=2, norm="ortho", axis=1)
    ceps[:, 0] -= C0_OFFSET
    return ceps


def features(x, with_lpc: bool = False):
    """(frames, 20) features of 16 kHz audio (an Audio or samples in [-1, 1]); one frame per 160
    samples, the last one zero-padded. With `with_lpc`, also (lpc (frames, 16), gain (frames,))
    from the unquantised cepstrum."""
    samples = _samples(x)
    frames = frame_count(len(samples))
    xp = preemphasis(samples * SCALE)
    ceps = cepstra(xp, frames)
    lpc, gain = lpc_from_cepstrum(ceps)
    period, correlation = pitch_track(xp, lpc)
    out = np.concatenate([ceps, period[:, None], correlation[:, None]], axis=1).astype(np.float32)
    return (out, lpc, gain) if with_lpc else out


def _samples(x) -> np.ndarray:
    from ..audio import Audio, resample, to_mono

    if isinstance(x, Audio):
        x = to_mono(resample(x, RATE)).samples[0]
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"features take mono samples, got shape {x.shape}")
    return x


def lpc_from_cepstrum(ceps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lpc (frames, 16), excitation RMS (frames,)) from (frames, >= 18) cepstra. A(z) = 1 + sum a_k z^-k;
    the RMS is that of the prediction error per sample, in 16-bit units of the pre-emphasised signal."""
    ceps = np.atleast_2d(np.asarray(ceps, np.float64))[:, :NB_BANDS].copy()
    ceps[:, 0] += C0_OFFSET
    from scipy.fft import idct

    band_energy = 10.0 ** idct(ceps, type=2, norm="ortho", axis=1)
    power = (band_energy / band_weights().sum(axis=1)) @ _interpolation()
    autocorr = np.fft.irfft(power, n=WINDOW, axis=1)[:, : LPC_ORDER + 1]
    window_energy = float(np.sum(_window() ** 2))
    autocorr[:, 0] += autocorr[:, 0] * 1e-4 + window_energy / 12.0  # white floor at 16-bit quantisation noise
    autocorr[:, 1:] *= 1.0 - 6e-5 * np.arange(1, LPC_ORDER + 1) ** 2  # lag window: widens sharp peaks
    lpc, error = levinson(autocorr, LPC_ORDER)
    return lpc, np.sqrt(np.maximum(error, 1e-9) / window_energy)


def levinson(autocorr: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Levinson-Durbin over rows: (a (rows, order), prediction error power (rows,))."""
    rows = autocorr.shape[0]
    a = np.zeros((rows, order + 1))
    a[:, 0] = 1.0
    error = autocorr[:, 0].copy()
    for i in range(1, order + 1):
        acc = autocorr[:, i] + np.einsum("rj,rj->r", a[:, 1:i], autocorr[:, i - 1 : 0 : -1])
        k = -acc / np.maximum(error, 1e-12)
        k = np.clip(k, -0.9999, 0.9999)  # keeps the synthesis filter stable on degenerate input
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        error = error * (1.0 - k * k)
    return a[:, 1:], error
