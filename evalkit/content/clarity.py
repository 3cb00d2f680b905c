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

from .spectra import HOP_SECONDS, frame_power, mel_db

__all__ = ["clarity", "clarity_of_spectra", "JUDGE_DB", "WINDOW_SECONDS"]

JUDGE_DB = 15.0  # clarity from which the recognizer's evidence is trusted (see bench_hallucination)
WINDOW_SECONDS = 0.5  # about a syllable each side of the frame
NOISE_PERCENTILE = 10
VALLEY_BINS = slice(4, 128)  # 125 Hz to 4 kHz of a 512-point FFT at 16 kHz
VALLEY_PERCENTILES = (90, 25)  # peaks and valleys of the frame's spectrum
CLIP_DB = (-20.0, 60.0)


def clarity(x: np.ndarray) -> np.ndarray:
    """Per-frame clarity in dB of mono 16 kHz `x`, on the 10 ms frame grid of `spectra.log_mel`."""
    power = frame_power(x)
    return clarity_of_spectra(power, mel_db(power))


def clarity_of_spectra(power: np.ndarray, mel: np.ndarray) -> np.ndarray:
    """`clarity` from the signal's `spectra.frame_power` and its `spectra.mel_db`, when those are at hand."""
    local = np.minimum(_floor_snr(mel), _valley_depth(power))
    return _smoothed(np.clip(local, *CLIP_DB))


def _floor_snr(mel: np.ndarray) -> np.ndarray:
    power = 10 ** (mel / 10)
    floor = np.percentile(power, NOISE_PERCENTILE, axis=0)
    excess = np.maximum(power - floor, 0.0).sum(axis=1)
    return 10 * np.log10(np.maximum(excess, 1e-30) / max(floor.sum(), 1e-30))


def _valley_depth(power: np.ndarray) -> np.ndarray:
    spectrum = 10 * np.log10(power[:, VALLEY_BINS] + 1e-12)
    high, low = np.percentile(spectrum, VALLEY_PERCENTILES, axis=1)
    return high - low


def _smoothed(frames: np.ndarray) -> np.ndarray:
    half = max(1, int(round(WINDOW_SECONDS / 2 / HOP_SECONDS)))
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(frames, half, mode="edge"), 2 * half + 1)
    return np.percentile(windows, 75, axis=1)
