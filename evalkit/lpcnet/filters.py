"""Compiled time-varying all-pole filters: LPC synthesis, de-emphasis, and the adjoint that trains through them.

`allpole(x, a, hop)` computes y[n] = x[n] - sum_k a[n // hop, k] y[n - 1 - k] over rows of x
(numba, one pass per row); the coefficients change every `hop` samples and the filter state
carries across the change, as a streaming decoder's would. `allpole_adjoint` is the transposed
operator (the gradient with respect to x), run backwards in time, so a network can be trained
through the exact filter the decoder uses.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.signal import lfilter

__all__ = ["allpole", "allpole_adjoint", "deemphasis", "fir"]


@numba.njit(cache=True, fastmath=False)
def _allpole(x, a, hop, y):
    rows, length = x.shape
    order = a.shape[2]
    for r in range(rows):
        for n in range(length):
            frame = n // hop
            acc = x[r, n]
            for k in range(min(order, n)):
                acc -= a[r, frame, k] * y[r, n - 1 - k]
            y[r, n] = acc


@numba.njit(cache=True, fastmath=False)
def _allpole_adjoint(g, a, hop, out):
    rows, length = g.shape
    order = a.shape[2]
    for r in range(rows):
        for n in range(length - 1, -1, -1):
            acc = g[r, n]
            for k in range(min(order, length - 1 - n)):
                m = n + 1 + k
                acc -= a[r, m // hop, k] * out[r, m]
            out[r, n] = acc


def _shapes(x: np.ndarray, a: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    x2 = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
    a3 = np.asarray(a, dtype=np.float64)
    if a3.ndim == 2:
        a3 = np.broadcast_to(a3, (x2.shape[0],) + a3.shape)
    if a3.shape[0] != x2.shape[0] or a3.shape[1] * hop < x2.shape[1]:
        raise ValueError(f"coefficients {a3.shape} do not cover signal {x2.shape} at hop {hop}")
    return x2, np.ascontiguousarray(a3)


def allpole(x: np.ndarray, a: np.ndarray, hop: int) -> np.ndarray:
    """1 / A(z) applied to x (rows, n) or (n,) with coefficients a (rows, frames, order) or (frames, order)."""
    x2, a3 = _shapes(x, a, hop)
    y = np.empty_like(x2)
    _allpole(x2, a3, hop, y)
    return y.reshape(np.shape(x))


def allpole_adjoint(g: np.ndarray, a: np.ndarray, hop: int) -> np.ndarray:
    """The transpose of `allpole` applied to g: the gradient of a loss with respect to its input."""
    g2, a3 = _shapes(g, a, hop)
    out = np.empty_like(g2)
    _allpole_adjoint(g2, a3, hop, out)
    return out.reshape(np.shape(g))


def deemphasis(x: np.ndarray, coef: float) -> np.ndarray:
    """1 / (1 - coef z^-1) along the last axis."""
    return lfilter([1.0], [1.0, -coef], np.asarray(x, np.float64), axis=-1)


def fir(x: np.ndarray, a: np.ndarray, hop: int) -> np.ndarray:
    """A(z) = 1 + sum_k a_k z^-k applied to x (n,) with per-frame coefficients a (frames, order): the inverse of allpole."""
    x = np.asarray(x, np.float64)
    order = a.shape[1]
    padded = np.concatenate([np.zeros(order), x])
    out = x.copy()
    frame = np.arange(len(x)) // hop
    for k in range(order):
        out += a[frame, k] * padded[order - 1 - k : order - 1 - k + len(x)]
    return out
