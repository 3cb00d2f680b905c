"""Statistics of paired preferences (AB tests): per pair shares with Wilson intervals and binomial tests,
the preference matrix, and Bradley-Terry strengths."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["preference_table", "preference_matrix", "bradley_terry"]


def _wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def preference_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per unordered pair (first, second by name): answers, wins of each, no-preference answers, the first's
    share of the decided answers with its Wilson CI, and the two-sided binomial p against 50 %."""
    rows = []
    pairs = frame.assign(
        first=frame[["condition", "other"]].min(axis=1), second=frame[["condition", "other"]].max(axis=1)
    )
    for (first, second), group in pairs.groupby(["first", "second"]):
        wins_first = int((group["chosen"] == first).sum())
        wins_second = int((group["chosen"] == second).sum())
        decided = wins_first + wins_second
        low, high = _wilson(wins_first, decided)
        p = stats.binomtest(wins_first, decided, 0.5).pvalue if decided else float("nan")
        rows.append(
            {
                "first": first,
                "second": second,
                "answers": len(group),
                "first_wins": wins_first,
                "second_wins": wins_second,
                "no_preference": len(group) - decided,
                "first_share": wins_first / decided if decided else float("nan"),
                "ci_low": low,
                "ci_high": high,
                "p_value": float(p),
            }
        )
    columns = [
        "first",
        "second",
        "answers",
        "first_wins",
        "second_wins",
        "no_preference",
        "first_share",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    return pd.DataFrame(rows, columns=columns)


def preference_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Square, conditions by name: the share of decided answers preferring the row's condition over the column's
    (NaN on the diagonal and for pairs never decided)."""
    names = sorted(set(frame["condition"]) | set(frame["other"]))
    matrix = pd.DataFrame(np.nan, index=pd.Index(names, name="preferred"), columns=pd.Index(names, name="over"))
    for row in preference_table(frame).itertuples():
        decided = row.first_wins + row.second_wins
        if decided:
            matrix.loc[row.first, row.second] = row.first_wins / decided
            matrix.loc[row.second, row.first] = row.second_wins / decided
    return matrix


def bradley_terry(frame: pd.DataFrame, iterations: int = 1000, tolerance: float = 1e-10) -> pd.DataFrame:
    """Bradley-Terry strengths from the decided answers (Hunter's MM algorithm), scaled to sum to 1, with
    their log; a condition that never wins gets strength 0 (its log is -inf)."""
    decided = frame[frame["chosen"].notna()]
    names = sorted(set(frame["condition"]) | set(frame["other"]))
    index = {name: k for k, name in enumerate(names)}
    wins = np.zeros((len(names), len(names)))  # wins[i, j]: i preferred over j
    for row in decided.itertuples():
        loser = row.other if row.chosen == row.condition else row.condition
        wins[index[row.chosen], index[loser]] += 1
    games = wins + wins.T
    strength = np.full(len(names), 1.0 / len(names))
    for _ in range(iterations):
        pair = strength[:, None] + strength[None, :]  # 0 only between two conditions that never win
        denominator = np.divide(games, pair, out=np.zeros_like(games), where=pair > 0).sum(axis=1)
        updated = np.divide(wins.sum(axis=1), denominator, out=np.zeros_like(strength), where=denominator > 0)
        updated /= updated.sum()
        if np.abs(updated - strength).max() < tolerance:
            strength = updated
            break
        strength = updated
    with np.errstate(divide="ignore"):
        log = np.log(strength)
    table = pd.DataFrame(
        {
            "condition": names,
            "wins": wins.sum(axis=1).astype(int),
            "comparisons": games.sum(axis=1).astype(int),
            "strength": strength,
            "log_strength": log,
        }
    )
    return table.sort_values("strength", ascending=False, ignore_index=True)
