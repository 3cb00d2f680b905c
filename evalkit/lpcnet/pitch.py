"""Pitch of 16 kHz speech per 10 ms frame: normalised cross-correlation of the LPC residual, Viterbi-smoothed.

For frame k the 20 ms target window (the features' analysis window, [160 k - 80, 160 k + 240))
of the LPC residual, low-passed at 2 kHz (causally; the wideband residual's upper half is mostly
noise, which would hide the voicing), is correlated with the same window `lag` samples earlier, for every lag from
32 to 256 samples (62.5 to 500 Hz); the normalised cross-correlation (NCC) is the local score.
A Viterbi search over the lags adds a penalty for pitch jumps (per octave) and a slight one for
long lags (against picking a multiple of the period). The track is decided packet by packet:
at the last frame of each 4-frame packet the best path is traced back over that packet only,
so a packet's pitch depends on nothing after it (no latency beyond the features' lookahead).
The chosen lag is refined to a fraction of a sample by a parabola through its NCC neighbours.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .framing import FRAME, LOOKAHEAD, LPC_ORDER, RATE, WINDOW, analysis_frames

__all__ = ["MIN_PERIOD", "MAX_PERIOD", "pitch_track", "normalized_cross_correlation", "lpc_residual"]

MIN_PERIOD, MAX_PERIOD = 32, 256
JUMP_PENALTY = 0.35  # per octave of change between consecutive frames
LONG_LAG_PENALTY = 0.03  # per octave above the shortest lag
PACKET_FRAMES = 4
LOWPASS_HZ = 2000.0


def lpc_residual(xp: np.ndarray, lpc: np.ndarray) -> np.ndarray:
    """The prediction error of the pre-emphasised signal. Sample n is filtered with the A(z) of the
    frame whose analysis window ends at or after it (frame (n - 80) // 160): a frame's pitch window
    then never depends on samples past its own lookahead."""
    frames = lpc.shape[0]
    n = frames * FRAME
    padded = np.pad(xp, (LPC_ORDER, max(0, n - len(xp))))[: n + LPC_ORDER]
    taps = np.lib.stride_tricks.sliding_window_view(padded, LPC_ORDER + 1)[:n, ::-1]  # x[n], x[n-1], ...
    coefs = np.concatenate([np.ones((frames, 1)), lpc], axis=1)
    owner = np.clip((np.arange(n) - LOOKAHEAD) // FRAME, 0, frames - 1)
    return np.einsum("nj,nj->n", taps, coefs[owner])


@lru_cache(maxsize=1)
def _lowpass_filter():
    from scipy.signal import butter  # here: listing the codecs must not import scipy

    return butter(4, LOWPASS_HZ, fs=RATE)


def _lowpass(x: np.ndarray) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter(*_lowpass_filter(), x)


def normalized_cross_correlation(residual: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 225): NCC of each frame's target window with the window `lag` samples earlier,
    for lags MIN_PERIOD..MAX_PERIOD."""
    span = WINDOW + MAX_PERIOD
    segments = analysis_frames(residual, frames, length=span, offset=-LOOKAHEAD - MAX_PERIOD)
    target = segments[:, MAX_PERIOD:]
    size = 1 << int(np.ceil(np.log2(span + WINDOW)))
    cross = np.fft.irfft(np.fft.rfft(segments, size) * np.conj(np.fft.rfft(target, size)), size)
    shifts = MAX_PERIOD - np.arange(MIN_PERIOD, MAX_PERIOD + 1)  # start of the lagged window in `segments`
    dots = cross[:, shifts]
    energy = np.concatenate([np.zeros((frames, 1)), np.cumsum(segments**2, axis=1)], axis=1)
    lagged = energy[:, shifts + WINDOW] - energy[:, shifts]
    own = energy[:, -1] - energy[:, MAX_PERIOD]
    return dots / np.sqrt(own[:, None] * np.maximum(lagged, 0.0) + 1e-6)


def pitch_track(xp: np.ndarray, lpc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(period in samples (fractional), correlation in [0, 1]) per frame of a pre-emphasised signal."""
    frames = lpc.shape[0]
    ncc = normalized_cross_correlation(_lowpass(lpc_residual(xp, lpc)), frames)
    lags = viterbi_lags(ncc)
    rows = np.arange(frames)
    period = lags + MIN_PERIOD + _parabolic_offset(ncc, lags)
    return period, np.clip(ncc[rows, lags], 0.0, 1.0)


def viterbi_lags(ncc: np.ndarray) -> np.ndarray:
    """Lag indices (0 = MIN_PERIOD) of the best-scoring smooth path, decided packet by packet."""
    frames, count = ncc.shape
    octave = np.log2(np.arange(MIN_PERIOD, MAX_PERIOD + 1))
    transition = JUMP_PENALTY * np.abs(octave[:, None] - octave[None, :])  # [previous, current]
    local = ncc - LONG_LAG_PENALTY * (octave - octave[0])
    back = np.zeros((frames, count), dtype=np.int32)
    score = local[0].copy()
    lags = np.zeros(frames, dtype=np.int64)
    for k in range(frames):
        if k:
            candidates = score[:, None] - transition
            back[k] = np.argmax(candidates, axis=0)
            score = candidates[back[k], np.arange(count)] + local[k]
        if k % PACKET_FRAMES == PACKET_FRAMES - 1 or k == frames - 1:
            _trace(back, score, lags, k, k - k % PACKET_FRAMES)
    return lags


def _trace(back: np.ndarray, score: np.ndarray, lags: np.ndarray, last: int, first: int) -> None:
    lags[last] = int(np.argmax(score))
    for k in range(last, first, -1):
        lags[k - 1] = back[k, lags[k]]


def _parabolic_offset(ncc: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Sub-sample offset of the NCC peak at each chosen lag, in [-0.5, 0.5]."""
    rows = np.arange(len(lags))
    inner = np.clip(lags, 1, ncc.shape[1] - 2)
    left, mid, right = ncc[rows, inner - 1], ncc[rows, inner], ncc[rows, inner + 1]
    curvature = left - 2 * mid + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
    return np.where(lags == inner, np.clip(offset, -0.5, 0.5), 0.0)
