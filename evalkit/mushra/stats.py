"""Statistics of MUSHRA ratings: per-condition summaries, the Attachment 3 permutation test,
and corrected paired comparisons. Every random step takes a seed.

Ratings come as a tidy frame with columns participant, item, condition, score (ratings_frame).

The listener mean of a condition is one definition everywhere (summaries, plots, the report's
agreement): the mean of all its kept ratings, each rating counting once, as BS.1534-3 defines it.
On an incomplete design an item rated by more listeners weighs more; on a complete design it is
the mean over items of the per-item means. `listener_means` computes it for any grouping.

The t interval is BS.1534-3's: all N ratings of a condition, mean +- t(0.975, N-1) s / sqrt(N).
The bootstrap resamples assessors, not single ratings, because one assessor's ratings are
correlated (a strict listener is strict on every item); it is the more honest interval when
assessors differ.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "listener_means",
    "condition_summary",
    "t_interval",
    "bootstrap_interval",
    "PermutationResult",
    "permutation_test",
    "paired_comparisons",
    "holm",
    "hochberg",
]


def t_interval(scores: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    scores = np.asarray(scores, dtype=float)
    if len(scores) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(scores) - 1) * scores.std(ddof=1) / math.sqrt(len(scores))
    return float(scores.mean() - half), float(scores.mean() + half)


def bootstrap_interval(
    sums: np.ndarray, counts: np.ndarray, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean, resampling assessors (each with its sum and count of ratings)."""
    if len(sums) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(low), float(high)


def listener_means(frame: pd.DataFrame, by: list[str] | tuple[str, ...] = ("condition",)) -> pd.DataFrame:
    """The listener mean (every rating once) and the number of ratings per group of `by`."""
    grouped = frame.groupby(list(by), sort=True)["score"]
    return grouped.agg(score="mean", ratings="count").reset_index()


def condition_summary(
    frame: pd.DataFrame, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0, order: list[str] | None = None
) -> pd.DataFrame:
    """Per condition: n, assessors, median, quartiles and IQR, the listener mean, std, t and bootstrap intervals."""
    means = listener_means(frame).set_index("condition")["score"]
    rows = []
    for index, (condition, group) in enumerate(frame.groupby("condition", sort=True)):
        scores = group["score"].to_numpy(float)
        per = group.groupby("participant")["score"].agg(["sum", "count"])
        q1, median, q3 = np.quantile(scores, [0.25, 0.5, 0.75])
        rows.append(
            {
                "condition": condition,
                "n": len(scores),
                "assessors": len(per),
                "median": median,
                "q1": q1,
                "q3": q3,
                "iqr": q3 - q1,
                "mean": means[condition],
                "std": scores.std(ddof=1) if len(scores) > 1 else math.nan,
                **dict(zip(("t_low", "t_high"), t_interval(scores, confidence))),
                **dict(
                    zip(
                        ("boot_low", "boot_high"),
                        bootstrap_interval(
                            per["sum"].to_numpy(float), per["count"].to_numpy(float), confidence, n_boot, seed + index
                        ),
                    )
                ),
            }
        )
    table = pd.DataFrame(rows)
    if order is not None:
        table = table.set_index("condition").reindex([c for c in order if c in set(table["condition"])]).reset_index()
    return table


# -- the permutation test of BS.1534-3 Attachment 3 -----------------------------------------


@dataclass(frozen=True)
class PermutationResult:
    statistic: float  # observed difference, a minus b (of means or medians)
    p_value: float
    n_permutations: int
    exact: bool  # every re-labelling enumerated (paired test with few pairs)


def permutation_test(
    a,
    b,
    paired: bool = False,
    statistic: str = "mean",
    n_permutations: int = 10_000,
    seed: int = 0,
    alternative: str = "two-sided",
) -> PermutationResult:
    """Is the difference between two conditions' scores larger than re-labelling at random gives?

    Unpaired (as Attachment 3 describes it): pool both samples, deal them out again at random,
    recompute the difference. Paired (the same assessors and items rated both): swap the two
    labels within each pair at random, i.e. flip the sign of each difference. scipy's test:
    Monte Carlo p-values are (k + 1) / (B + 1), never 0; with no more re-labellings than
    `n_permutations` every one is enumerated and the p-value is exact.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    center = {"mean": np.mean, "median": np.median}[statistic]
    if paired and len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} and {len(b)})")
    if paired:

        def difference(x, y, axis):
            return center(x - y, axis=axis)

        relabellings = 2 ** len(a)
    else:

        def difference(x, y, axis):
            return center(x, axis=axis) - center(y, axis=axis)

        relabellings = math.comb(len(a) + len(b), len(a))
    # Two-sided is |difference| against the re-labellings' |difference|s (Attachment 3), not scipy's doubled tail.
    two_sided = alternative == "two-sided"
    result = stats.permutation_test(
        (a, b),
        (lambda x, y, axis: np.abs(difference(x, y, axis))) if two_sided else difference,
        permutation_type="samples" if paired else "independent",
        vectorized=True,
        n_resamples=n_permutations,
        alternative="greater" if two_sided else alternative,
        rng=np.random.default_rng(seed),
    )
    return PermutationResult(
        float(difference(a, b, axis=0)),
        float(result.pvalue),
        len(result.null_distribution),
        relabellings <= n_permutations,
    )


# -- paired comparisons with family-wise correction ----------------------------------------


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error, any dependence)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def hochberg(p_values) -> np.ndarray:
    """Hochberg's step-up adjusted p-values (family-wise error; assumes non-negative dependence)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)[::-1]
    adjusted = np.minimum.accumulate((np.arange(len(p)) + 1) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def paired_comparisons(
    frame: pd.DataFrame,
    method: str = "t",
    correction: str = "holm",
    alpha: float = 0.05,
    unit: str = "assessor",
    n_permutations: int = 10_000,
    seed: int = 0,
    conditions: list[str] | None = None,
) -> pd.DataFrame:
    """Every pair of conditions, paired by assessor (means over items) or by rating (assessor, item).

    `method` is "t" (paired t-test) or "permutation" (paired, Attachment 3); p-values are adjusted
    by Holm or Hochberg over all pairs.
    """
    wide = _paired_table(frame, unit)
    conditions = conditions or list(wide.columns)
    rows = []
    for index, (a, b) in enumerate(itertools.combinations(conditions, 2)):
        pair = wide[[a, b]].dropna()
        d = (pair[a] - pair[b]).to_numpy()
        if method == "t":
            p = float(stats.ttest_rel(pair[a], pair[b]).pvalue) if d.std() > 0 else float(d.mean() == 0)
        else:
            p = permutation_test(
                pair[a], pair[b], paired=True, n_permutations=n_permutations, seed=seed + index
            ).p_value
        rows.append({"a": a, "b": b, "n": len(d), "mean_diff": d.mean(), "p": p})
    table = pd.DataFrame(rows, columns=["a", "b", "n", "mean_diff", "p"])
    table["p_adjusted"] = {"holm": holm, "hochberg": hochberg}[correction](table["p"].to_numpy())
    table["significant"] = table["p_adjusted"] < alpha
    return table


def _paired_table(frame: pd.DataFrame, unit: str) -> pd.DataFrame:
    index = {"assessor": ["participant"], "rating": ["participant", "item"]}[unit]
    return frame.pivot_table(index=index, columns="condition", values="score", aggfunc="mean")
