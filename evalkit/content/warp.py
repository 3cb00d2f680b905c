"""Content-based time alignment of two utterances: dynamic time warping of their spectral envelopes.

A second take, a generative decoder or a codec with its own timing says the same phones a
little earlier or later, and the drift grows along the utterance; a fixed window cannot
follow it. The warp pairs every reference frame with the decoded frames that say the same
thing, within a band around the line that maps one utterance's speech onto the other's, so
a changed phone shows as a local rise of the envelope distance along the path while timing
alone costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .spectra import HOP_SECONDS, active_frames, envelope_change, envelopes, level_free_cepstra

__all__ = ["ContentWarp", "warp", "BAND_SECONDS", "STEP_PENALTY"]

BAND_SECONDS = 0.4  # how far the path may stray from the line that maps speech onto speech
STEP_PENALTY = 1.0  # cost of a frame held while the other moves on: timing changes only where needed
SMOOTH_FRAMES = 5  # 50 ms moving average: a phone change lasts longer than a codec glitch


@dataclass(frozen=True)
class ContentWarp:
    """The path and what it says: per reference frame, how far the content moved there."""

    ref_frames: np.ndarray  # path cells (reference frame, decoded frame), both non-decreasing
    deg_frames: np.ndarray
    change: np.ndarray  # dB per reference frame: envelope distance along the path, smoothed
    deg_to_ref: np.ndarray  # reference frame (fractional) of each decoded frame

    def to_ref_seconds(self, seconds: float) -> float:
        """A time of the decoded audio mapped onto the reference's time line."""
        frame = min(max(int(round(seconds / HOP_SECONDS)), 0), self.deg_to_ref.size - 1)
        return float(self.deg_to_ref[frame]) * HOP_SECONDS


def warp(ref_db: np.ndarray, deg_db: np.ndarray) -> ContentWarp:
    """Warp log-mel spectra `deg_db` (frames, bands) onto `ref_db`; lengths may differ."""
    ref_env, deg_env = envelopes(ref_db, deg_db)
    ref_cep, deg_cep = level_free_cepstra(ref_env), level_free_cepstra(deg_env)
    offsets, width = _band(ref_db, deg_db)
    ref_frames, deg_frames = _path(ref_cep, deg_cep, offsets, width, STEP_PENALTY)
    cells = envelope_change(ref_env, deg_env, ref_frames, deg_frames)
    change = _per_ref_frame(ref_frames, deg_frames, cells, len(ref_db), len(deg_db))
    kernel = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES
    counts = np.maximum(np.bincount(deg_frames, minlength=len(deg_db)), 1)
    deg_to_ref = np.bincount(deg_frames, ref_frames, len(deg_db)) / counts
    return ContentWarp(ref_frames, deg_frames, np.convolve(change, kernel, "same"), deg_to_ref)


def _band(ref_db: np.ndarray, deg_db: np.ndarray) -> tuple[np.ndarray, int]:
    """Per reference frame, the first decoded frame of its band, and the band's width.

    The band follows the straight line from the start of the reference's speech to the start
    of the decoded speech and from end to end, so a lag or a slower decoder is followed; it is
    widened where needed to reach both corners (the path runs from the first frames to the last).
    """
    n, m = len(ref_db), len(deg_db)
    (r0, r1), (d0, d1) = _speech_span(ref_db, ref_db), _speech_span(deg_db, ref_db)
    slope = (d1 - d0) / (r1 - r0) if r1 > r0 and d1 > d0 else (m - 1) / max(n - 1, 1)
    centre = np.clip(np.round(d0 + (np.arange(n) - r0) * slope), 0, m - 1).astype(np.int64)
    half = max(
        int(round(BAND_SECONDS / HOP_SECONDS)),
        int(centre[0]),
        int(m - 1 - centre[-1]),
        int(np.max(np.diff(centre), initial=0)) + 1,
    )
    return centre - half, 2 * half + 1


def _speech_span(x_db: np.ndarray, ref_db: np.ndarray) -> tuple[int, int]:
    """First and last frame of speech, judged against the reference's level."""
    loud = np.flatnonzero(active_frames(x_db, ref_db))
    return (int(loud[0]), int(loud[-1])) if loud.size else (0, len(x_db) - 1)


def _per_ref_frame(ref_frames, deg_frames, cells, n, m) -> np.ndarray:
    """Each reference frame's distance: its own cells' mean, or more where decoded frames that
    were squeezed onto it (a phone the decoder inserted) differ more."""
    ref_mean = np.bincount(ref_frames, cells, n) / np.maximum(np.bincount(ref_frames, minlength=n), 1)
    deg_mean = np.bincount(deg_frames, cells, m) / np.maximum(np.bincount(deg_frames, minlength=m), 1)
    out = ref_mean.copy()
    np.maximum.at(out, ref_frames, deg_mean[deg_frames])
    return out


def _path(ref_cep: np.ndarray, deg_cep: np.ndarray, offsets: np.ndarray, width: int, penalty: float):
    return _compiled_dtw()(np.ascontiguousarray(ref_cep), np.ascontiguousarray(deg_cep), offsets, width, penalty)


@lru_cache(maxsize=1)
def _compiled_dtw():
    """numba on first use: every worker imports the metrics, and most runs never warp."""
    import numba

    return numba.njit(cache=True)(_dtw)


def _dtw(ref, deg, offsets, width, penalty):  # pragma: no cover - compiled; tested through warp()
    """Cheapest path from (0, 0) to the last frames through the band, with diagonal steps free
    of charge and a held frame (a step in one signal only) costing `penalty` besides its distance."""
    n, m, dims = ref.shape[0], deg.shape[0], ref.shape[1]
    acc = np.full((n, width), np.inf)
    step = np.zeros((n, width), np.int8)
    for i in range(n):
        for k in range(width):
            j = offsets[i] + k
            if j < 0 or j >= m:
                continue
            total = 0.0
            for b in range(dims):
                d = ref[i, b] - deg[j, b]
                total += d * d
            cost = np.sqrt(total)
            if i == 0 and j == 0:
                acc[i, k] = cost
                continue
            best, move = np.inf, 0
            if i > 0:
                up = j - 1 - offsets[i - 1]
                if 0 <= up < width and acc[i - 1, up] < best:
                    best, move = acc[i - 1, up], 0
                up = j - offsets[i - 1]
                if 0 <= up < width and acc[i - 1, up] + penalty < best:
                    best, move = acc[i - 1, up] + penalty, 1
            if k > 0 and acc[i, k - 1] + penalty < best:
                best, move = acc[i, k - 1] + penalty, 2
            acc[i, k] = cost + best
            step[i, k] = move
    ref_frames = np.empty(n + m, np.int64)
    deg_frames = np.empty(n + m, np.int64)
    i, j, count = n - 1, m - 1, 0
    while True:
        ref_frames[count], deg_frames[count] = i, j
        count += 1
        if i == 0 and j == 0:
            break
        move = step[i, j - offsets[i]]
        if move == 0:
            i, j = i - 1, j - 1
        elif move == 1:
            i -= 1
        else:
            j -= 1
    return ref_frames[:count][::-1].copy(), deg_frames[:count][::-1].copy()
