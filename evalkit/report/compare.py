"""Paired tests between codecs across items: is codec A's metric different from codec B's on the same items?

Both codecs scored the same items, so each item gives one difference. The Wilcoxon signed-rank
test (default; no normality assumed, zero differences dropped) or the paired t-test, with Holm's
correction over the family of tests: the metrics compared (`compare_codecs`), or, per metric, the
comparisons of the best codec with each other one (`best_versus_rest`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError
from ..mushra.stats import holm
from .codecinfo import COST_METRICS, REFERENCE_FAMILIES, higher_is_better

__all__ = ["PAIRED_TESTS", "COMPARE_COLUMNS", "paired_test", "compare_codecs", "best_versus_rest", "comparison_text"]

PAIRED_TESTS = ("wilcoxon", "t")
COMPARE_COLUMNS = [
    "metric",
    "a",
    "b",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "median_diff",
    "test",
    "p",
    "p_adjusted",
    "significant",
]


def paired_test(differences: np.ndarray, test: str = "wilcoxon") -> float:
    """Two-sided p-value that the paired differences centre on zero (NaN with fewer than 2 pairs)."""
    d = np.asarray(differences, dtype=float)
    if test not in PAIRED_TESTS:
        raise ConfigError(f"unknown paired test {test!r}; choose one of {', '.join(PAIRED_TESTS)}")
    if len(d) < 2:
        return math.nan
    if not np.any(d):
        return 1.0
    if test == "t":
        return float(stats.ttest_1samp(d, 0.0).pvalue) if d.std() > 0 else 0.0
    return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)


def compare_codecs(
    results: pd.DataFrame, a: str, b: str, metrics: list[str] | None = None, test: str = "wilcoxon", alpha: float = 0.05
) -> pd.DataFrame:
    """Per metric, A against B over the items both scored; Holm over the metrics."""
    codecs = set(results["codec"])
    if a == b:
        raise ConfigError(f"--compare {a} {b}: name two different codecs (a codec against itself has no difference)")
    for name in (a, b):
        if name not in codecs:
            raise ConfigError(f"no results of codec {name!r} in this run (codecs: {', '.join(sorted(codecs))})")
    metrics = metrics or sorted(set(results["metric"]) - set(COST_METRICS))
    rows = [_row(results, metric, a, b, test) for metric in metrics]
    return _adjusted(pd.DataFrame(rows, columns=COMPARE_COLUMNS[:-2]), alpha)


def best_versus_rest(
    results: pd.DataFrame, board: pd.DataFrame, metrics: list[str], test: str = "wilcoxon", alpha: float = 0.05
) -> pd.DataFrame:
    """Per metric: its best codec (test conditions excluded) against every other codec; Holm within the metric."""
    tables = []
    for metric in metrics:
        rows = board[(board["metric"] == metric) & board["mean"].notna() & ~board["family"].isin(REFERENCE_FAMILIES)]
        if len(rows) < 2 or metric in COST_METRICS:
            continue
        ranked = rows.sort_values("mean", ascending=not higher_is_better(metric))["codec"].tolist()
        table = pd.DataFrame(
            [_row(results, metric, ranked[0], other, test) for other in ranked[1:]], columns=COMPARE_COLUMNS[:-2]
        )
        tables.append(_adjusted(table, alpha))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COMPARE_COLUMNS)


def comparison_text(table: pd.DataFrame) -> str:
    """`evalkit results --compare A B` output: one line per metric, which codec is better and how sure."""
    from ..text_tables import format_table

    if table.empty:
        return "no metric to compare"
    rows = []
    for row in table.itertuples():
        better = (
            "-" if not row.significant else (row.a if (row.mean_diff > 0) == higher_is_better(row.metric) else row.b)
        )
        rows.append(
            [
                row.metric,
                row.n,
                _num(row.mean_a),
                _num(row.mean_b),
                _num(row.mean_diff),
                _num(row.median_diff),
                _num(row.p),
                _num(row.p_adjusted),
                better,
            ]
        )
    header = [
        "metric",
        "items",
        f"mean {table['a'].iloc[0]}",
        f"mean {table['b'].iloc[0]}",
        "mean diff",
        "median diff",
        "p",
        "p (Holm)",
        "better (α 0.05)",
    ]
    return (
        format_table(header, rows) + f"\n{table['test'].iloc[0]} test across items; Holm over the {len(table)} metrics"
    )


def _num(value) -> str:
    return "-" if value is None or value != value else f"{value:.4g}"


def _row(results: pd.DataFrame, metric: str, a: str, b: str, test: str) -> dict:
    ok = results[(results["status"] == "ok") & (results["metric"] == metric) & results["codec"].isin([a, b])]
    wide = ok.pivot_table(index="item_id", columns="codec", values="value", aggfunc="mean").reindex(columns=[a, b])
    wide = wide.dropna()
    d = (wide[a] - wide[b]).to_numpy(float)
    return {
        "metric": metric,
        "a": a,
        "b": b,
        "n": len(d),
        "mean_a": wide[a].mean(),
        "mean_b": wide[b].mean(),
        "mean_diff": d.mean() if len(d) else math.nan,
        "median_diff": float(np.median(d)) if len(d) else math.nan,
        "test": "Wilcoxon signed-rank" if test == "wilcoxon" else "paired t",
        "p": paired_test(d, test),
    }


def _adjusted(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    p = table["p"].to_numpy(float)
    adjusted = np.full(len(p), np.nan)
    valid = np.isfinite(p)
    adjusted[valid] = holm(p[valid]) if valid.any() else adjusted[valid]
    table["p_adjusted"] = adjusted
    table["significant"] = table["p_adjusted"] < alpha
    return table
