"""MUSHRA (ITU-R BS.1534-3): every condition of an item on one page, each rated 0-100 against the labelled
reference; the hidden reference and the 3.5 kHz and 7 kHz anchors are added to every test.

The statistics (BS.1534-3 post-screening, summaries, ANOVA, mixed model) live in evalkit.mushra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..randomize import make_plan
from ..spec_parts import LOW_ANCHOR, MAX_SIGNALS, MID_ANCHOR, REFERENCE, ConditionSpec
from .base import Condition, Item, Scale, TestType, score_row

__all__ = ["MushraType", "TYPE", "SCALE", "MAX_SIGNALS"]

# The continuous quality scale of BS.1534-3: five equal intervals, labelled.
SCALE = Scale(
    "mushra",
    0.0,
    100.0,
    bands=(("Excellent", 80, 100), ("Good", 60, 80), ("Fair", 40, 60), ("Poor", 20, 40), ("Bad", 0, 20)),
)

INSTRUCTIONS = (
    "Use headphones in a quiet room. In each trial, listen to the reference and to every signal, then rate "
    "each signal's quality compared with the reference on the 0-100 scale. One of the signals is the reference "
    "itself: rate it 100. You may replay and switch between signals as often as you like."
)


class MushraType(TestType):
    name = "mushra"
    title = "MUSHRA (ITU-R BS.1534-3)"
    view = "sliders"
    reference = "required"
    labelled_reference = True
    scale = SCALE
    max_conditions = MAX_SIGNALS
    needs_training = True
    defaults = {"looping": True, "min_play_seconds": 1.0, "trial_order": "balanced", "instructions": INSTRUCTIONS}

    def automatic_conditions(self, check, data: dict, cards: dict) -> tuple:
        for card in (LOW_ANCHOR, MID_ANCHOR):
            if card not in cards:
                check.fail("conditions", f"the mandatory anchor's codec card {card!r} is missing from the card folder")
        return (
            ConditionSpec(REFERENCE, "reference"),
            ConditionSpec(LOW_ANCHOR, "anchor", LOW_ANCHOR),
            ConditionSpec(MID_ANCHOR, "anchor", MID_ANCHOR),
        )

    def advise(self, check, items: tuple, conditions: tuple, shared: dict) -> None:
        if shared["sample_rate"] < 16000:
            check.warn("sample_rate", f"{shared['sample_rate']} Hz cannot carry the 7 kHz anchor's band")
        if len(items) < 5:
            check.warn("items", f"{len(items)} items; ITU-R BS.1534-3 recommends at least 5")
        narrow = [item.id for item in items if item.source_rate <= 16000]
        if narrow:
            check.warn(
                "items",
                f"{len(narrow)} item(s) end at or below 8 kHz ({', '.join(narrow[:3])}"
                f"{', ...' if len(narrow) > 3 else ''}): the 7 kHz anchor will sound almost like the "
                "reference, and post-screening will leave such items out of the mid-anchor rule",
            )

    def plan(
        self,
        test_seed: int,
        ordinal: int,
        items: Sequence[Item],
        training: Sequence[Item],
        conditions: Sequence[Condition],
        spec: dict,
    ) -> dict[str, Any]:
        """A Williams Latin square over the items, every condition on each page in a fresh seeded order."""
        return make_plan(
            test_seed,
            ordinal,
            [i.id for i in items],
            [i.id for i in training],
            [c.id for c in conditions],
            spec.get("trial_order", "balanced"),
        )

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        return {"labels": [str(k + 1) for k in range(len(ids))], "scale": SCALE.to_page()}

    def missing(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[str]:
        return [
            f"sample {k + 1} not rated" for k, stimulus in enumerate(ids) if not SCALE.valid(response.get(stimulus))
        ]

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            score_row(condition, slot, SCALE, response[stimulus])
            for slot, (stimulus, condition) in enumerate(zip(ids, trial["conditions"]))
        ]

    def frame(self, responses):
        return responses[responses["response"] == "score"].reset_index(drop=True)

    def screen(self, frame, setup):
        from ...mushra.screening import screen

        return screen(frame, config=setup.screening)

    def analyse(self, frame, setup) -> dict[str, Any]:
        from ...mushra.stats import condition_summary

        return {"conditions": condition_summary(frame, n_boot=2000, order=setup.order())}

    def agreement_scores(self, frame, setup):
        return frame

    def report_section(self, report):
        from ...report.sections_mushra import listening_section

        return listening_section(report)


TYPE = MushraType()
