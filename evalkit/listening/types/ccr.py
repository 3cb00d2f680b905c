"""CCR (ITU-T P.800 Annex E): the reference and a processed version of an item, in a random order; the listener
rates the second against the first from -3 (much worse) to +3 (much better). CMOS with 95 % CIs.

Every (item, condition) pair is one trial. The stored score is sign-corrected: it always says how
the processed version compares with the reference, whichever order the page played them in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .acr import mos_table
from .base import Condition, Item, Scale, TestType, score_row

__all__ = ["CcrType", "TYPE", "SCALE"]

SCALE = Scale(
    "ccr",
    -3.0,
    3.0,
    points=(
        (3.0, "Much better"),
        (2.0, "Better"),
        (1.0, "Slightly better"),
        (0.0, "About the same"),
        (-1.0, "Slightly worse"),
        (-2.0, "Worse"),
        (-3.0, "Much worse"),
    ),
)

INSTRUCTIONS = (
    "Use headphones in a quiet room. On each page you hear two versions of the same recording, first and second. "
    "Listen to both, then say how the quality of the second compares with the first."
)


class CcrType(TestType):
    name = "ccr"
    title = "CCR (ITU-T P.800)"
    reference = "required"
    scale = SCALE
    question = "The quality of the second compared with the first is:"
    keys = frozenset({"trials_per_session"})
    defaults = {"looping": False, "min_play_seconds": "all", "trial_order": "random", "instructions": INSTRUCTIONS}

    def read_options(self, check, data: dict, items: tuple, conditions: tuple, base: Path) -> dict[str, Any]:
        per_session = data.get("trials_per_session")
        return {
            "trials_per_session": None
            if per_session is None
            else check.integer(per_session, "trials_per_session", 1, len(items) * (len(conditions) - 1))
        }

    def design(self, items: Sequence[Item], conditions: Sequence[Condition], options: dict) -> list[dict]:
        reference = next(c.id for c in conditions if c.kind == "reference")
        return [
            {"item": item.id, "conditions": [reference, c.id]}
            for item in items
            for c in conditions
            if c.kind != "reference"
        ]

    def arrange(self, trial: dict, rng: random.Random) -> dict:
        pair = list(trial["conditions"])
        rng.shuffle(pair)
        return {**trial, "conditions": pair}

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        return {
            "labels": ["First", "Second"],
            "question": self.question,
            "scale": SCALE.to_page(),
            "options": [{"value": value, "label": label} for value, label in SCALE.points],
        }

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        first, second = trial["conditions"]
        reference = trial["reference"]
        sign = 1.0 if first == reference else -1.0  # the page rated the second against the first
        processed = second if first == reference else first
        return [score_row(processed, 0, SCALE, sign * float(response["choice"]), other=reference)]

    def plan(self, test_seed, ordinal, items, training, conditions, spec) -> dict[str, Any]:
        plan = super().plan(test_seed, ordinal, items, training, conditions, spec)
        reference = next(c.id for c in conditions if c.kind == "reference")
        for phase in ("training", "test"):  # which of the pair is the reference, for the sign
            plan[phase] = [{**trial, "reference": reference} for trial in plan[phase]]
        return plan

    def frame(self, responses):
        return responses[(responses["response"] == "score") & (responses["scale"] == self.scale.name)].reset_index(
            drop=True
        )

    def analyse(self, frame, setup) -> dict[str, Any]:
        return {"cmos": mos_table(frame).rename(columns={"mos": "cmos"})}

    def agreement_scores(self, frame, setup):
        return frame  # each processed condition's score against the reference: comparable across conditions

    def report_section(self, report):
        from ...report.sections_listening import ccr_section

        return ccr_section(report)


TYPE = CcrType()
