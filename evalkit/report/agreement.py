"""Metric-listener agreement: Pearson, Spearman and Kendall with bootstrap intervals resampled over items.

Input is a stimulus-level frame (one row per item x condition x metric): the listeners' mean score
of the stimulus, its number of ratings (`ratings`), their sum of squares (`score_sq`, for P.1401's
RMSE*) and the metric value. Two levels:

- stimulus: one point per item x condition.
- system: one point per condition. Its listener score is the listener mean of evalkit.mushra.stats
  (every kept rating of the condition counts once), over the ratings of the stimuli this metric
  scored; its metric value is averaged over the same ratings (each stimulus weighted by its number
  of ratings). On a complete design both are plain means over items.

The bootstrap resamples items (with all their stimuli), because items are the sample that a
listening test draws: a stimulus-level resample duplicates whole items; a system-level resample
recomputes every condition's means over the resampled items. The statistics of a resample are
computed from integer weights, exactly as on the duplicated rows. A resample in which either
variable is constant has no correlation and is left out of the percentiles.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .p1401 import p1401_rows
from .weighted import row_correlations, weighted_correlations

__all__ = ["METHODS", "LEVELS", "correlate", "bootstrap_ci", "system_level", "agreement_table", "AGREEMENT_COLUMNS"]

METHODS = ("pearson", "spearman", "kendall")
LEVELS = ("system", "stimulus")
AGREEMENT_COLUMNS = ["metric", "level", "method", "n", "items", "r", "ci_low", "ci_high", "p_value"]
_TESTS = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}


def correlate(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    """(coefficient, two-sided p) of `method`; NaNs when fewer than 3 points or a constant variable."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = _TESTS[method](x, y)
    return float(result.statistic), float(result.pvalue)


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, method: str, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the coefficient over `n_boot` resamples of independent (x, y) pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return math.nan, math.nan
    weights = _resample_weights(len(x), n_boot, seed)
    return _percentiles(weighted_correlations(x, y, weights, method), confidence)


def system_level(stimuli: pd.DataFrame) -> pd.DataFrame:
    """Per metric x condition: the listener mean and the metric mean over the same ratings, and the item count."""
    frame = stimuli.assign(
        score_sum=stimuli["score"] * stimuli["ratings"], value_sum=stimuli["value"] * stimuli["ratings"]
    )
    grouped = frame.groupby(["metric", "condition"], sort=True)
    table = grouped.agg(
        score_sum=("score_sum", "sum"),
        value_sum=("value_sum", "sum"),
        ratings=("ratings", "sum"),
        score_sq=("score_sq", "sum"),
        items=("item", "nunique"),
    ).reset_index()
    table["score"] = table["score_sum"] / table["ratings"]
    table["value"] = table["value_sum"] / table["ratings"]
    return table[["metric", "condition", "score", "value", "ratings", "score_sq", "items"]]


def agreement_table(
    stimuli: pd.DataFrame,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    p1401: bool = False,
    directions: dict[str, bool] | None = None,
) -> pd.DataFrame:
    """AGREEMENT_COLUMNS for every metric at system and stimulus level, for each method.

    With `p1401`, each metric and level also gets rows of method "rmse" and "rmse*" (ITU-T P.1401
    after a monotonic third-order mapping whose direction `directions[metric]` gives).
    """
    stimuli = _with_defaults(stimuli)
    rows = []
    for index, (metric, group) in enumerate(stimuli.groupby("metric", sort=True) if not stimuli.empty else ()):
        items = sorted(group["item"].unique())
        weights = _resample_weights(len(items), n_boot, seed + index)
        for level in LEVELS:
            rows += _level_rows(metric, level, group, items, weights, confidence)
            if p1401:
                points = system_level(group) if level == "system" else group
                rows += p1401_rows(metric, level, points, (directions or {}).get(metric) is not False, len(items))
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _level_rows(
    metric: str, level: str, group: pd.DataFrame, items: list, weights: np.ndarray, confidence: float
) -> list[dict]:
    points = system_level(group) if level == "system" else group
    x, y = points["value"].to_numpy(float), points["score"].to_numpy(float)
    rows = []
    for method in METHODS:
        r, p = correlate(x, y, method)
        replicates = (
            _system_replicates(group, items, weights, method)
            if level == "system"
            else _stimulus_replicates(group, items, weights, method)
        )
        low, high = _percentiles(replicates, confidence) if len(x) >= 3 else (math.nan, math.nan)
        rows.append(
            {
                "metric": metric,
                "level": level,
                "method": method,
                "n": len(points),
                "items": len(items),
                "r": r,
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
            }
        )
    return rows


def _stimulus_replicates(group: pd.DataFrame, items: list, weights: np.ndarray, method: str) -> np.ndarray:
    """Each resample weighs a stimulus by how often its item was drawn."""
    position = pd.Index(items).get_indexer(group["item"])
    return weighted_correlations(
        group["value"].to_numpy(float), group["score"].to_numpy(float), weights[:, position], method
    )


def _system_replicates(group: pd.DataFrame, items: list, weights: np.ndarray, method: str) -> np.ndarray:
    """Each resample recomputes every condition's rating-weighted means over the drawn items."""
    counts = group.pivot_table(index="item", columns="condition", values="ratings", aggfunc="sum").reindex(items)
    conditions = counts.columns
    scores = (
        group.assign(s=group["score"] * group["ratings"])
        .pivot_table(index="item", columns="condition", values="s", aggfunc="sum")
        .reindex(items)[conditions]
    )
    values = (
        group.assign(v=group["value"] * group["ratings"])
        .pivot_table(index="item", columns="condition", values="v", aggfunc="sum")
        .reindex(items)[conditions]
    )
    counts, scores, values = (t.fillna(0.0).to_numpy(float) for t in (counts, scores, values))
    total = weights @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        score_means, value_means = (weights @ scores) / total, (weights @ values) / total
    complete = np.isfinite(score_means).all(axis=1)  # a resample that lost a condition has no system point
    out = np.full(len(weights), np.nan)
    if len(conditions) >= 3 and complete.any():
        out[complete] = row_correlations(value_means[complete], score_means[complete], method)
    return out


def _resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot x n draw counts of a bootstrap with replacement (seeded)."""
    picks = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    return np.apply_along_axis(np.bincount, 1, picks, minlength=n).astype(float) if n else np.zeros((n_boot, 0))


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def _with_defaults(stimuli: pd.DataFrame) -> pd.DataFrame:
    """Stimulus frames without rating counts (hand-made ones) count one rating each."""
    frame = stimuli.copy()
    if "ratings" not in frame:
        frame["ratings"] = 1
    if "score_sq" not in frame:
        frame["score_sq"] = frame["score"] ** 2 * frame["ratings"]
    return frame
