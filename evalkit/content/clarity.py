"""Is the decoded audio clean enough to judge? Two local estimates read from the decoded audio alone.

* Noise-floor SNR: each band's floor is a low percentile of that band over the item (speech
  leaves every band quiet some of the time, stationary noise never does); a frame's value is
  its energy above the floors over the floors' energy.
* Valley depth: between harmonics and formants clean speech has deep spectral valleys; noise
  that comes and goes with the speech (MNRU, coarse quantisation) fills them, which the floor
  cannot see. The value is the spread of a frame's
  spectrum below 4 kHz (90th minus 25th percentile of its bins, dB).

Clarity is the lower of the two (dB), taken as the upper quartile over a window around each
frame so that a pause inside the window does not count as noisy speech. No reference is used:
a generative decoder that speaks cleanly is judged on what it says, while audio buried in
noise or distortion is marked "not judged" instead of scored.
"""

from __future__ import annotations

import numpy as np

from .spectra import FRAME, HOP, HOP_SECONDS, log_mel

__all__ = ["clarity", "JUDGE_DB", "WINDOW_SECONDS"]

JUDGE_DB = 15.0  # clarity from which the recognizer's evidence is trusted (see bench_hallucination)
WINDOW_SECONDS = 0.5  # about a syllable each side of the frame
NOISE_PERCENTILE = 10
VALLEY_BINS = slice(4, 128)  # 125 Hz to 4 kHz of a 512-point FFT at 16 kHz
VALLEY_PERCENTILES = (90, 25)  # peaks and valleys of the frame's spectrum
CLIP_DB = (-20.0, 60.0)


def clarity(x: np.ndarray) -> np.ndarray:
    """Per-frame clarity in dB of mono 16 kHz `x`, on the 10 ms frame grid of `spectra.log_mel`."""
    local = np.minimum(_floor_snr(x), _valley_depth(x))
    return _smoothed(np.clip(local, *CLIP_DB))


def _floor_snr(x: np.ndarray) -> np.ndarray:
    power = 10 ** (log_mel(x) / 10)
    floor = np.percentile(power, NOISE_PERCENTILE, axis=0)
    excess = np.maximum(power - floor, 0.0).sum(axis=1)
    return 10 * np.log10(np.maximum(excess, 1e-30) / max(floor.sum(), 1e-30))


def _valley_depth(x: np.ndarray) -> np.ndarray:
    padded = np.pad(np.asarray(x, dtype=np.float64), (FRAME // 2, FRAME // 2))
    if padded.size < FRAME:
        padded = np.pad(padded, (0, FRAME - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::HOP] * np.hanning(FRAME)
    spectrum = 10 * np.log10(np.abs(np.fft.rfft(frames, 512)[:, VALLEY_BINS]) ** 2 + 1e-12)
    high, low = np.percentile(spectrum, VALLEY_PERCENTILES, axis=1)
    return high - low


def _smoothed(frames: np.ndarray) -> np.ndarray:
    half = max(1, int(round(WINDOW_SECONDS / 2 / HOP_SECONDS)))
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(frames, half, mode="edge"), 2 * half + 1)
    return np.percentile(windows, 75, axis=1)
