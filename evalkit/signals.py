"""Generated, seeded test signals: tones, white noise, and noise at a chosen SNR."""

from __future__ import annotations

import numpy as np

from .audio import Audio

__all__ = ["sinusoid", "white_noise", "add_noise"]


def sinusoid(freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000, amplitude: float = 0.5) -> Audio:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return Audio(amplitude * np.sin(2 * np.pi * freq * t), sample_rate, f"sine-{freq:g}")


def white_noise(seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0, amplitude: float = 0.1) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(amplitude * rng.standard_normal(int(seconds * sample_rate)), sample_rate, f"noise-{seed}")


def add_noise(audio: Audio, snr_db: float, seed: int = 0) -> Audio:
    """Add white noise scaled to `snr_db` relative to the signal's mean power."""
    noise = np.random.default_rng(seed).standard_normal(audio.samples.shape)
    power = float(np.mean(audio.samples.astype(np.float64) ** 2))
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2))
    return audio.with_samples(audio.samples + noise)
