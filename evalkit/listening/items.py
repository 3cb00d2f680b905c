"""Item selection for a listening test from a scored run: the items that tell the conditions apart best.

Three rules, each a score per item over the chosen codecs (conditions) and metrics of the run:

- `disagreement`: how much the metrics disagree about the order of the conditions on the item,
  (1 - Kendall's tau) / 2 averaged over every pair of metrics (0: the same order, 1: reversed;
  lower-is-better metrics are turned round first). Listeners settle what the metrics cannot.
- `spread`: how far apart the conditions are on the item, the standard deviation across conditions
  of each metric's z-score (over the whole run, so metrics weigh alike), averaged over metrics.
- `coverage`: items spread evenly over the quality range (by the item's mean z-score over
  conditions and metrics), so the test is not all easy or all hard items.

The highest-scoring `count` items are chosen (`coverage`: evenly spaced ranks of quality).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError

__all__ = ["RULES", "select_items"]

RULES = ("disagreement", "spread", "coverage")


def select_items(
    results: pd.DataFrame,
    count: int,
    rule: str = "disagreement",
    metrics: list[str] | None = None,
    codecs: list[str] | None = None,
) -> pd.DataFrame:
    """The chosen items, best first: item, score, conditions and metrics behind it, and `chosen` (rank)."""
    values = _values(results, metrics, codecs, rule)
    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    if rule == "disagreement":
        table = _disagreement(values)
    else:
        table = _spread(values) if rule == "spread" else _quality(values)
    if rule == "coverage":
        ranks = np.unique(np.round(np.linspace(0, len(table) - 1, min(count, len(table)))).astype(int))
        chosen = table.sort_values("score", ignore_index=True).iloc[ranks]
    else:
        chosen = table.sort_values(["score", "item"], ascending=[False, True]).head(count)
    return chosen.reset_index(drop=True).assign(chosen=lambda t: range(1, len(t) + 1))


def _values(results: pd.DataFrame, metrics: list[str] | None, codecs: list[str] | None, rule: str) -> pd.DataFrame:
    """item x (metric, codec) values of the ok rows, lower-is-better metrics negated; ConfigError when too little."""
    from ..report.codecinfo import COST_METRICS, higher_is_better
    from ..report.leaderboard import current_results

    if rule not in RULES:
        raise ConfigError(f"unknown item-selection rule {rule!r}; use one of {', '.join(RULES)}")
    ok = current_results(results)
    ok = ok[(ok["status"] == "ok") & ~ok["metric"].isin(COST_METRICS) & ok["value"].notna()]
    for wanted, column in ((metrics, "metric"), (codecs, "codec")):
        if wanted:
            if missing := sorted(set(wanted) - set(ok[column])):
                raise ConfigError(
                    f"the run has no scored {column} {missing[0]!r} (it has: {', '.join(sorted(set(ok[column])))})"
                )
            ok = ok[ok[column].isin(wanted)]
    ok = ok.assign(value=[v if higher_is_better(m) else -v for v, m in zip(ok["value"], ok["metric"])])
    table = ok.pivot_table(index="item_id", columns=["metric", "codec"], values="value", aggfunc="mean")
    table = table.dropna()  # an item counts only when every chosen codec has every chosen metric
    found_metrics = sorted(set(table.columns.get_level_values(0)))
    found_codecs = sorted(set(table.columns.get_level_values(1)))
    if table.empty or len(found_codecs) < 2:
        raise ConfigError("item selection needs at least two codecs scored on the same items with the same metrics")
    if rule == "disagreement" and len(found_metrics) < 2:
        raise ConfigError(
            f"the disagreement rule compares metrics: the run has only {', '.join(found_metrics)}; "
            "pass two or more with --metric, or use --by spread"
        )
    return table


def _zscores(values: pd.DataFrame) -> pd.DataFrame:
    """Each metric standardised over every item and codec of the selection (a constant metric gives 0)."""
    out = values.copy()
    for metric in sorted(set(values.columns.get_level_values(0))):
        block = values[metric]
        sd = float(np.std(block.to_numpy(float)))
        out[metric] = (block - float(np.mean(block.to_numpy(float)))) / sd if sd > 0 else 0.0
    return out


def _disagreement(values: pd.DataFrame) -> pd.DataFrame:
    metrics = sorted(set(values.columns.get_level_values(0)))
    rows = []
    for item, row in values.iterrows():
        taus = []
        for a, b in itertools.combinations(metrics, 2):
            tau = stats.kendalltau(row[a].to_numpy(float), row[b].to_numpy(float)).statistic
            if np.isfinite(tau):
                taus.append(tau)
        score = float(np.mean([(1 - t) / 2 for t in taus])) if taus else float("nan")
        rows.append({"item": item, "score": score, "metric_pairs": len(taus)})
    return _described(pd.DataFrame(rows).dropna(subset=["score"]), values)


def _spread(values: pd.DataFrame) -> pd.DataFrame:
    z = _zscores(values)
    metrics = sorted(set(values.columns.get_level_values(0)))
    scores = np.mean([z[m].std(axis=1, ddof=0).to_numpy(float) for m in metrics], axis=0)
    return _described(pd.DataFrame({"item": values.index, "score": scores}), values)


def _quality(values: pd.DataFrame) -> pd.DataFrame:
    z = _zscores(values)
    return _described(pd.DataFrame({"item": values.index, "score": z.mean(axis=1).to_numpy(float)}), values)


def _described(table: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    return table.assign(
        codecs=len(set(values.columns.get_level_values(1))), metrics=len(set(values.columns.get_level_values(0)))
    ).reset_index(drop=True)
