"""Speaker similarity: cosine of Resemblyzer speaker embeddings (GE2E; weights ship in its wheel)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import MetricSpec, metric

__all__ = ["speaker_similarity"]

# Resemblyzer declares `typing` (a Python 2 backport that must not be installed) among its
# dependencies: install it without them; its real ones (torch, librosa, webrtcvad) are pinned.
INSTALL = "pip install --no-deps resemblyzer==0.1.4"


@lru_cache(maxsize=1)
def _encoder():
    """One encoder per process: loading the 17 MB of weights costs more than a few embeddings."""
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def _embedding(x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return _encoder().embed_utterance(np.clip(x, -1.0, 1.0).astype(np.float32))


@metric(
    MetricSpec(
        name="speaker_similarity",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=(16000,),
        min_duration=1.0,
        package="resemblyzer",
        outputs=("speaker_similarity",),
        description="Cosine similarity of Resemblyzer (GE2E) utterance embeddings of reference and decoded audio, "
        "16 kHz, weights shipped in the wheel; about 0.6 between different speakers, 1 for the same audio",
        requires=("resemblyzer", "torch", "webrtcvad", "librosa"),
        install=INSTALL,
        needs_alignment=False,
    )
)
def speaker_similarity(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    a, b = _embedding(ref), _embedding(deg)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
