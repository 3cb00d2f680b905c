"""DCR (ITU-T P.800 Annex D): the reference, then a processed version of an item; the listener rates how
annoying the degradation is, from 5 (inaudible) to 1 (very annoying). DMOS with 95 % CIs."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from .acr import mos_table
from .base import Scale, score_row
from .ccr import CcrType

__all__ = ["DcrType", "TYPE", "SCALE"]

SCALE = Scale(
    "dcr",
    1.0,
    5.0,
    points=(
        (5.0, "Degradation is inaudible"),
        (4.0, "Audible but not annoying"),
        (3.0, "Slightly annoying"),
        (2.0, "Annoying"),
        (1.0, "Very annoying"),
    ),
)

INSTRUCTIONS = (
    "Use headphones in a quiet room. On each page you hear the original recording first, then a processed "
    "version. Listen to both, then rate how annoying the degradation of the second is."
)


class DcrType(CcrType):
    name = "dcr"
    title = "DCR (ITU-T P.800)"
    scale = SCALE
    question = "The degradation of the second compared with the first is:"
    defaults = {**CcrType.defaults, "instructions": INSTRUCTIONS}

    def arrange(self, trial: dict, rng: random.Random) -> dict:
        return dict(trial)  # the reference always comes first

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        return {
            "labels": ["Reference", "Processed"],
            "question": self.question,
            "scale": SCALE.to_page(),
            "options": [{"value": value, "label": label} for value, label in SCALE.points],
        }

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        reference, processed = trial["conditions"]
        return [score_row(processed, 0, SCALE, float(response["choice"]), other=reference)]

    def analyse(self, frame, setup) -> dict[str, Any]:
        return {"dmos": mos_table(frame).rename(columns={"mos": "dmos"})}

    def report_section(self, report):
        from ...report.sections_listening import dcr_section

        return dcr_section(report)


TYPE = DcrType()
