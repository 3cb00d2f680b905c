"""Shared fixtures: generated signals (seeded) and a short real speech clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.audio import Audio, load, resample

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"


def sinusoid(freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000, amplitude: float = 0.5) -> Audio:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return Audio(amplitude * np.sin(2 * np.pi * freq * t), sample_rate, f"sine-{freq:g}")


def white_noise(seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0, amplitude: float = 0.1) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(amplitude * rng.standard_normal(int(seconds * sample_rate)), sample_rate, f"noise-{seed}")


def _speech_path() -> Path:
    clips = sorted(DEMO.glob("**/*.wav"))
    if clips:
        return clips[0]
    import pysptk  # fallback before the demo corpus exists

    return Path(pysptk.__file__).parent / "example_audio_data" / "arctic_a0007.wav"


@pytest.fixture(scope="session")
def speech() -> Audio:
    """About 3 s of real speech at 16 kHz."""
    audio = resample(load(_speech_path()), 16000)
    return audio.with_samples(audio.samples[:, : 3 * 16000])
