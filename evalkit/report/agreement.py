"""Metric-listener agreement: Pearson, Spearman and Kendall with seeded bootstrap intervals.

Input is a stimulus-level frame (one row per item x condition x metric: the listeners' mean
score and the metric value). Condition level averages both over the items first. The bootstrap
resamples the units of the level (stimuli, or conditions) with replacement; a resample in which
either variable is constant has no correlation and is left out of the percentiles.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["METHODS", "correlate", "bootstrap_ci", "condition_level", "agreement_table", "AGREEMENT_COLUMNS"]

METHODS = ("pearson", "spearman", "kendall")
AGREEMENT_COLUMNS = ["metric", "level", "method", "n", "r", "ci_low", "ci_high", "p_value"]
_KENDALL_VECTOR_MAX = 200
_TESTS = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}


def correlate(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    """(coefficient, two-sided p) of `method`; NaNs when fewer than 3 points or a constant variable."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = _TESTS[method](x, y)
    return float(result.statistic), float(result.pvalue)


def bootstrap_ci(x: np.ndarray, y: np.ndarray, method: str, n_boot: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the coefficient over `n_boot` resamples of the (x, y) pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[picks], y[picks]
    if method == "pearson":
        values = _pearson_rows(xs, ys)
    elif method == "spearman":
        values = _pearson_rows(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
    else:  # pairwise signs vectorised for small n; scipy's O(n log n) per resample beyond
        values = _kendall_rows(xs, ys) if len(x) <= _KENDALL_VECTOR_MAX else _kendall_loop(xs, ys)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def condition_level(stimuli: pd.DataFrame) -> pd.DataFrame:
    """Per metric x condition: mean listener score and mean metric value over the same items."""
    grouped = stimuli.groupby(["metric", "condition"], sort=True)
    return grouped.agg(score=("score", "mean"), value=("value", "mean"), items=("item", "nunique")).reset_index()


def agreement_table(stimuli: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> pd.DataFrame:
    """AGREEMENT_COLUMNS for every metric, at stimulus and condition level, for each method."""
    conditions = condition_level(stimuli) if not stimuli.empty else stimuli
    rows = []
    for level, frame in (("condition", conditions), ("stimulus", stimuli)):
        for index, (metric, group) in enumerate(frame.groupby("metric", sort=True) if not frame.empty else ()):
            x, y = group["value"].to_numpy(float), group["score"].to_numpy(float)
            for method in METHODS:
                r, p = correlate(x, y, method)
                low, high = bootstrap_ci(x, y, method, n_boot, seed + index, confidence)
                rows.append({"metric": metric, "level": level, "method": method, "n": len(group),
                             "r": r, "ci_low": low, "ci_high": high, "p_value": p})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _kendall_loop(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample: NaN, dropped by the caller
        return np.array([stats.kendalltau(a, b).statistic for a, b in zip(x, y)], dtype=float)


def _kendall_rows(x: np.ndarray, y: np.ndarray, cells: int = 4_000_000) -> np.ndarray:
    """Kendall's tau-b (as scipy's default) of each row pair, in chunks of about `cells` pair signs."""
    n = x.shape[1]
    pairs = n * (n - 1) / 2
    chunk = max(1, cells // (n * n))
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        sx = np.sign(x[start:start + chunk, :, None] - x[start:start + chunk, None, :])
        sy = np.sign(y[start:start + chunk, :, None] - y[start:start + chunk, None, :])
        concordance = (sx * sy).sum(axis=(1, 2)) / 2
        tied_x = ((sx == 0).sum(axis=(1, 2)) - n) / 2  # the diagonal is not a pair
        tied_y = ((sy == 0).sum(axis=(1, 2)) - n) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + chunk] = concordance / np.sqrt((pairs - tied_x) * (pairs - tied_y))
    return out


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair at once (NaN where a row is constant)."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (x * y).sum(axis=1) / denominator, np.nan)
