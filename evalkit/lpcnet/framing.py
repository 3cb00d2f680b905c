"""LPCNet's 10 ms framing of 16 kHz speech, shared by the features and the pitch track."""

from __future__ import annotations

import numpy as np

__all__ = ["RATE", "FRAME", "WINDOW", "LOOKAHEAD", "LPC_ORDER", "analysis_frames", "frame_count"]

RATE = 16000
FRAME = 160  # 10 ms
WINDOW = 320  # 20 ms, centred on its frame
LOOKAHEAD = (WINDOW - FRAME) // 2  # samples the window reaches past its frame's end
LPC_ORDER = 16


def analysis_frames(x: np.ndarray, frames: int, length: int = WINDOW, offset: int = -LOOKAHEAD) -> np.ndarray:
    """(frames, length) views of x: row k starts at 160 k + offset; samples outside x are zero."""
    pad_left = max(0, -offset)
    end = FRAME * (frames - 1) + offset + length
    padded = np.pad(x, (pad_left, max(0, end - len(x))))
    starts = FRAME * np.arange(frames) + offset + pad_left
    return padded[starts[:, None] + np.arange(length)[None, :]]


def frame_count(samples: int) -> int:
    return -(-samples // FRAME)
