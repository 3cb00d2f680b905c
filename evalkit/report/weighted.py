"""Correlations of many bootstrap resamples at once: from integer weights, or one sample per row.

`weighted_correlations(x, y, W, method)` gives, for each row of W, the coefficient of the data in
which point j appears W[b, j] times, without building those rows: Pearson from weighted moments;
Spearman as Pearson of the mid-ranks the duplicated data would have; Kendall's tau-b (scipy's
default) from the pair signs weighted by W[b, j] * W[b, k], counting the tied pairs that
duplicates of one point form among themselves. `row_correlations(X, Y, method)` correlates each
row pair of two matrices.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["weighted_correlations", "row_correlations"]

_CELLS = 4_000_000  # pair-sign cells per chunk (memory bound)


def weighted_correlations(x: np.ndarray, y: np.ndarray, weights: np.ndarray, method: str) -> np.ndarray:
    """One coefficient per row of `weights` (NaN where a variable is constant among the drawn points)."""
    x, y, weights = np.asarray(x, float), np.asarray(y, float), np.asarray(weights, float)
    if method == "pearson":
        return _weighted_pearson(np.broadcast_to(x, weights.shape), np.broadcast_to(y, weights.shape), weights)
    if method == "spearman":
        return _weighted_pearson(_mid_ranks(x, weights), _mid_ranks(y, weights), weights)
    return _weighted_kendall(x, y, weights)


def row_correlations(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """The coefficient of each row pair of `x` and `y` (each row one sample)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if method == "kendall":
        return _kendall_rows(x, y)
    if method == "spearman":
        x, y = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    return _weighted_pearson(x, y, np.ones_like(x))


def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair, in chunks of about _CELLS pair signs."""
    n = x.shape[1]
    pairs = n * (n - 1) / 2
    chunk = max(1, _CELLS // max(1, n * n))
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        sx = np.sign(x[start : start + chunk, :, None] - x[start : start + chunk, None, :])
        sy = np.sign(y[start : start + chunk, :, None] - y[start : start + chunk, None, :])
        concordance = (sx * sy).sum(axis=(1, 2)) / 2
        tied_x = ((sx == 0).sum(axis=(1, 2)) - n) / 2  # the diagonal is not a pair
        tied_y = ((sy == 0).sum(axis=(1, 2)) - n) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = concordance / np.sqrt((pairs - tied_x) * (pairs - tied_y))
    out[~np.isfinite(out)] = np.nan
    return out


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = x - (w * x).sum(axis=1, keepdims=True) / total
        dy = y - (w * y).sum(axis=1, keepdims=True) / total
        sxy, sxx, syy = ((w * a * b).sum(axis=1) for a, b in ((dx, dy), (dx, dx), (dy, dy)))
        r = sxy / np.sqrt(sxx * syy)
    return np.where(_constant(x, w) | _constant(y, w), np.nan, r)


def _constant(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows in which every drawn point has the same value (rounding would fake a correlation)."""
    drawn = w > 0
    return np.where(drawn, values, -np.inf).max(axis=1) == np.where(drawn, values, np.inf).min(axis=1)


def _mid_ranks(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rank of each point among the duplicated data: points below, plus half of those equal (itself too), + 1/2."""
    below = (values[:, None] < values[None, :]) + 0.5 * (values[:, None] == values[None, :])
    return w @ below + 0.5


def _weighted_kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    concordance, tied_x, tied_y = sx * sy, (sx == 0).astype(float), (sy == 0).astype(float)
    chunk = max(1, _CELLS // max(1, len(x)))  # rows of w @ M held at once
    out = np.empty(len(w))
    for start in range(0, len(w), chunk):
        part = w[start : start + chunk]
        total = part.sum(axis=1)
        pairs = total * (total - 1) / 2
        score = _quadratic(part, concordance) / 2
        ties_x = (_quadratic(part, tied_x) - total) / 2
        ties_y = (_quadratic(part, tied_y) - total) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = score / np.sqrt((pairs - ties_x) * (pairs - ties_y))
    out[~np.isfinite(out)] = np.nan
    return out


def _quadratic(w: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """w_b' M w_b for every row b."""
    return ((w @ matrix) * w).sum(axis=1)
