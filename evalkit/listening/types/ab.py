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

from ..preferences import bradley_terry, preference_matrix, preference_table
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


TYPE = AbType()
