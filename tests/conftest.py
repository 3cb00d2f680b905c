"""Shared fixtures: generated signals (seeded) and a short real speech clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.audio import Audio, load, resample
from evalkit.signals import add_noise, sinusoid, white_noise  # noqa: F401  (re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"


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
