"""ABX: two conditions of an item as A and B, and X, which is one of them; the listener says which.

Every pair of conditions on every item is one trial; the order of A and B and which one X is are
drawn per session and page. X gets an opaque id and a dither of its own, so its bytes never match
A's or B's. Statistics: per listener and per pair of conditions, correct identifications and the
one-sided binomial p against guessing (50 %).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from scipy import stats

from .ab import AbType
from .base import choice_row

__all__ = ["AbxType", "TYPE", "identification_table"]

INSTRUCTIONS = (
    "Use headphones in a quiet room. On each page you hear A, B and X, three versions of the same recording; "
    "X is the same as A or as B. Listen as often as you like and say which one X is."
)


class AbxType(AbType):
    name = "abx"
    title = "ABX identification"
    question = "Is X the same as A or as B?"
    keys = frozenset({"trials_per_session"})
    defaults = {**AbType.defaults, "instructions": INSTRUCTIONS}

    def read_options(self, check, data, items, conditions, base) -> dict[str, Any]:
        options = super().read_options(check, {**data, "forced": True}, items, conditions, base)
        return {"trials_per_session": options["trials_per_session"]}

    def arrange(self, trial: dict, rng: random.Random) -> dict:
        pair = list(trial["conditions"])
        rng.shuffle(pair)
        return {**trial, "conditions": [*pair, pair[rng.randrange(2)]]}

    def plan(self, test_seed, ordinal, items, training, conditions, spec) -> dict[str, Any]:
        return super(AbType, self).plan(test_seed, ordinal, items, training, conditions, spec)

    def answer(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> Any:
        value = response.get("choice")
        return value if value in ids[:2] else None

    def missing(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[str]:
        return [] if self.answer(trial, ids, response) is not None else ["say whether X is A or B"]

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        return {
            "labels": ["A", "B", "X"],
            "question": self.question,
            "options": [{"value": ids[0], "label": "A"}, {"value": ids[1], "label": "B"}],
        }

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        a, b, x = trial["conditions"]
        label, chosen = ("a", a) if response["choice"] == ids[0] else ("b", b)
        return [choice_row(x, b if x == a else a, label, chosen, slot=2)]  # about X, compared with the other

    def analyse(self, frame, setup) -> dict[str, Any]:
        return {"by_listener": identification_table(frame, "participant"), "by_pair": identification_table(frame)}

    def report_section(self, report):
        from ...report.sections_listening import abx_section

        return abx_section(report)


def identification_table(frame: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Correct ABX answers per pair of conditions (and per `by`, e.g. participant): trials, correct, share,
    and the one-sided binomial p of doing that well by guessing."""
    pairs = frame.assign(
        first=frame[["condition", "other"]].min(axis=1),
        second=frame[["condition", "other"]].max(axis=1),
        correct=frame["chosen"] == frame["condition"],
    )
    keys = [*([by] if by else []), "first", "second"]
    rows = []
    for key, group in pairs.groupby(keys):
        n, right = len(group), int(group["correct"].sum())
        rows.append(
            {
                **dict(zip(keys, key)),
                "trials": n,
                "correct": right,
                "share": right / n,
                "p_value": float(stats.binomtest(right, n, 0.5, alternative="greater").pvalue),
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "trials", "correct", "share", "p_value"])


TYPE = AbxType()
