"""AB preference: two conditions of an item a page, the listener picks the better one (or, unforced, neither).

Every pair of conditions on every item is one trial; which of the pair is A is drawn per session
and page, so the order is balanced. Statistics: per pair of conditions, the share preferring each
with a Wilson 95 % CI and a two-sided binomial test (no-preference answers are counted apart and left
out of the test), and Bradley-Terry scores when more than two conditions are compared.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .base import Condition, Item, TestType, choice_row

__all__ = ["AbType", "TYPE", "NONE", "preference_table", "preference_matrix", "bradley_terry"]

NONE = "none"  # the unforced test's "no preference"

INSTRUCTIONS = (
    "Use headphones in a quiet room. On each page you hear two versions, A and B, of the same recording. "
    "Listen to both, as often as you like, and choose the one whose quality you prefer."
)


class AbType(TestType):
    name = "ab"
    title = "AB preference"
    view = "pick"
    reference = "optional"
    question = "Which version do you prefer?"
    keys = frozenset({"forced", "trials_per_session"})
    defaults = {
        "looping": True,
        "min_play_seconds": 1.0,
        "trial_order": "random",
        "instructions": INSTRUCTIONS,
        "reference": False,
    }

    def read_options(self, check, data: dict, items: tuple, conditions: tuple, base: Path) -> dict[str, Any]:
        pairs = len(items) * len(conditions) * (len(conditions) - 1) // 2
        per_session = data.get("trials_per_session")
        return {
            "forced": check.boolean(data.get("forced", True), "forced"),
            "trials_per_session": None
            if per_session is None
            else check.integer(per_session, "trials_per_session", 1, pairs),
        }

    def design(self, items: Sequence[Item], conditions: Sequence[Condition], options: dict) -> list[dict]:
        return [
            {"item": item.id, "conditions": [a.id, b.id]}
            for item in items
            for a, b in itertools.combinations(conditions, 2)
        ]

    def arrange(self, trial: dict, rng: random.Random) -> dict:
        pair = list(trial["conditions"])
        rng.shuffle(pair)
        return {**trial, "conditions": pair}

    def choices(self, trial: dict, ids: Sequence[str], forced: bool = True) -> list[str]:
        return list(ids) + ([] if forced else [NONE])

    def answer(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> Any:
        value = response.get("choice")
        return value if value in list(ids) + [NONE] else None

    def missing(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[str]:
        value = self.answer(trial, ids, response)
        if value is None:
            return ["choose A or B"]
        if value == NONE and trial.get("forced", True):
            return ["choose A or B (this test has no 'no preference')"]
        return []

    def plan(self, test_seed, ordinal, items, training, conditions, spec) -> dict[str, Any]:
        plan = super().plan(test_seed, ordinal, items, training, conditions, spec)
        forced = (spec.get("options") or {}).get("forced", True)
        for phase in ("training", "test"):  # the page needs the rule without the test's definition
            plan[phase] = [{**trial, "forced": forced} for trial in plan[phase]]
        return plan

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        choices = [{"value": ids[0], "label": "A"}, {"value": ids[1], "label": "B"}]
        if not trial.get("forced", True):
            choices.append({"value": NONE, "label": "No preference"})
        return {"labels": ["A", "B"], "question": self.question, "options": choices}

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        a, b = trial["conditions"]
        value = response["choice"]
        label, chosen = ("a", a) if value == ids[0] else ("b", b) if value == ids[1] else (NONE, None)
        return [choice_row(a, b, label, chosen)]

    def frame(self, responses):
        return responses[responses["response"] == "choice"].reset_index(drop=True)

    def analyse(self, frame, setup) -> dict[str, Any]:
        tables = {"preferences": preference_table(frame)}
        if len(set(frame["condition"]) | set(frame["other"])) > 2:
            tables["bradley_terry"] = bradley_terry(frame)
        return tables

    def report_section(self, report):
        from ...report.sections_listening import ab_section

        return ab_section(report)


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


TYPE = AbType()
