"""Shared fixtures: generated signals (seeded) and a short real speech clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.audio import Audio, load, resample
from evalkit.datasets import load_dataset
from evalkit.signals import add_noise, sinusoid, white_noise  # noqa: F401  (re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"


def _speech_path() -> Path:
    return load_dataset(DEMO / "manifest.jsonl")[0].path


@pytest.fixture(scope="session")
def speech() -> Audio:
    """About 3 s of real speech at 16 kHz."""
    audio = resample(load(_speech_path()), 16000)
    return audio.with_samples(audio.samples[:, : 3 * 16000])
