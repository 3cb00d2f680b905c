"""ITU-T P.1401 prediction errors of a metric against listener scores, after a monotonic mapping.

The metric's values are first mapped onto the listening scale with a third-order polynomial,
constrained to be monotonic (increasing for a higher-is-better metric, decreasing otherwise) over
the range of the values; then, with N points and d = 4 mapping parameters:

- RMSE  = sqrt(sum(e_i^2) / (N - d)), e_i = listener score - mapped value;
- RMSE* = sqrt(sum(max(0, |e_i| - ci95_i)^2) / (N - d)), the epsilon-insensitive RMSE that
  ignores errors inside each point's 95 % interval ci95_i = t(0.975, M_i - 1) * s_i / sqrt(M_i)
  of its M_i ratings.

Both need N > d; with fewer points they are NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["monotonic_cubic", "prediction_errors", "p1401_rows", "PARAMETERS"]

PARAMETERS = 4  # the cubic's coefficients: the d of P.1401's degrees of freedom
_GRID = np.linspace(0.0, 1.0, 101)  # where the slope is kept of one sign


def monotonic_cubic(x: np.ndarray, y: np.ndarray, increasing: bool = True):
    """The least-squares cubic y ~ f(x) whose slope keeps one sign on [min x, max x]; returns f."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    low, span = float(x.min()), float(np.ptp(x)) or 1.0
    basis = np.vander((x - low) / span, PARAMETERS, increasing=True)
    slopes = np.column_stack([np.zeros_like(_GRID), np.ones_like(_GRID), 2 * _GRID, 3 * _GRID**2])
    sign = 1.0 if increasing else -1.0
    linear = np.polyfit((x - low) / span, y, 1)[::-1]
    start = np.array([linear[0], linear[1] if sign * linear[1] > 0 else 0.0, 0.0, 0.0])
    if sign * linear[1] <= 0:
        start[0] = y.mean()
    result = optimize.minimize(
        lambda c: np.sum((basis @ c - y) ** 2),
        start,
        jac=lambda c: 2 * basis.T @ (basis @ c - y),
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda c: sign * (slopes @ c), "jac": lambda c: sign * slopes}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    coefficients = result.x
    return lambda values: (
        np.vander((np.asarray(values, float) - low) / span, PARAMETERS, increasing=True) @ coefficients
    )


def prediction_errors(x: np.ndarray, y: np.ndarray, ci95: np.ndarray, increasing: bool = True) -> tuple[float, float]:
    """(RMSE, RMSE*) of listener scores `y` predicted from metric values `x` after the mapping."""
    x, y, ci95 = np.asarray(x, float), np.asarray(y, float), np.asarray(ci95, float)
    if len(x) <= PARAMETERS or np.ptp(x) == 0:
        return math.nan, math.nan
    errors = y - monotonic_cubic(x, y, increasing)(x)
    dof = len(x) - PARAMETERS
    outside = np.maximum(0.0, np.abs(errors) - np.nan_to_num(ci95, nan=0.0))
    return float(np.sqrt(np.sum(errors**2) / dof)), float(np.sqrt(np.sum(outside**2) / dof))


def p1401_rows(metric: str, level: str, points: pd.DataFrame, increasing: bool, items: int) -> list[dict]:
    """Rows in the agreement table's columns: method "rmse" and "rmse*" (r holds the value; no interval)."""
    rmse, rmse_star = prediction_errors(points["value"], points["score"], _ci95(points), increasing)
    return [
        {
            "metric": metric,
            "level": level,
            "method": method,
            "n": len(points),
            "items": items,
            "r": value,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "p_value": math.nan,
        }
        for method, value in (("rmse", rmse), ("rmse*", rmse_star))
    ]


def _ci95(points: pd.DataFrame) -> np.ndarray:
    """Half-width of each point's 95 % t interval from its ratings' count and sum of squares."""
    count = points["ratings"].to_numpy(float)
    mean = points["score"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = (points["score_sq"].to_numpy(float) - count * mean**2) / (count - 1)
        half = stats.t.ppf(0.975, count - 1) * np.sqrt(np.maximum(variance, 0.0) / count)
    return np.where(count > 1, half, 0.0)
