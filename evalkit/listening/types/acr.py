"""ACR (ITU-T P.800 / P.808): one stimulus a page, rated on the 5-point absolute category scale; MOS with 95 % CIs.

Every (item, condition) pair is one trial; `trials_per_session` gives each session a balanced share
of them. P.808's quality controls are options of this type: `gold` and `trapping` clips mixed into
each session and the per-session `rejection` rules (evalkit.listening.p808).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .. import p808
from .base import Condition, Item, Scale, TestType, score_row

__all__ = ["AcrType", "TYPE", "SCALE", "mos_table"]

SCALE = Scale("acr", 1.0, 5.0, points=((5.0, "Excellent"), (4.0, "Good"), (3.0, "Fair"), (2.0, "Poor"), (1.0, "Bad")))

INSTRUCTIONS = (
    "Use headphones in a quiet room. On each page you hear one recording: listen to all of it, then rate "
    "its overall quality from Excellent to Bad. There is no reference; rate each recording on its own."
)


class AcrType(TestType):
    name = "acr"
    title = "ACR (ITU-T P.800 / P.808)"
    view = "pick"
    reference = "optional"
    scale = SCALE
    question = "How would you rate the quality of this recording?"
    keys = frozenset(
        {"trials_per_session", "gold", "gold_per_session", "trapping", "trapping_per_session", "rejection"}
    )
    defaults = {"looping": False, "min_play_seconds": "all", "trial_order": "random", "instructions": INSTRUCTIONS}

    def read_options(self, check, data: dict, items: tuple, conditions: tuple, base: Path) -> dict[str, Any]:
        gold = p808.read_gold(check, data.get("gold"), items, conditions, SCALE)
        trapping = p808.read_trapping(check, data.get("trapping"), base, SCALE)
        per_session = data.get("trials_per_session")
        return {
            "trials_per_session": None
            if per_session is None
            else check.integer(per_session, "trials_per_session", 1, len(items) * len(conditions)),
            "gold": gold,
            "trapping": trapping,
            "gold_per_session": check.integer(
                data.get("gold_per_session", 1 if gold else 0), "gold_per_session", 0, len(gold)
            ),
            "trapping_per_session": check.integer(
                data.get("trapping_per_session", 1 if trapping else 0), "trapping_per_session", 0, len(trapping)
            ),
            "rejection": p808.read_rejection(check, data.get("rejection")),
        }

    def prepare(self, spec, out_dir: Path) -> None:
        options = spec.options
        p808.prepare_traps(options["trapping"], out_dir, spec.sample_rate, spec.target_lufs)

    def advise(self, check, items: tuple, conditions: tuple, shared: dict) -> None:
        if len(items) < 4:
            check.warn("items", f"{len(items)} items; P.800 asks for several talkers and sentences per condition")

    def design(self, items: Sequence[Item], conditions: Sequence[Condition], options: dict) -> list[dict]:
        return [{"item": item.id, "conditions": [condition.id]} for item in items for condition in conditions]

    def insert_checks(
        self, trials: list[dict], items: Sequence[Item], conditions: Sequence[Condition], options: dict, seed: int
    ) -> list[dict]:
        rng = random.Random(f"{seed}|p808")
        ids = {condition.key: condition.id for condition in conditions}
        item_ids = {item.key: item.id for item in items}
        gold = rng.sample(options.get("gold") or [], options.get("gold_per_session") or 0)
        traps = rng.sample(options.get("trapping") or [], options.get("trapping_per_session") or 0)
        checks = [
            {"item": item_ids[g["item"]], "conditions": [ids[g["condition"]]], "kind": "gold", "accept": g["accept"]}
            for g in gold
        ]
        checks += [
            {
                "item": None,
                "conditions": ["trap"],
                "file": t["file"],
                "duration": t["duration"],
                "kind": "trap",
                "accept": t["accept"],
            }
            for t in traps
        ]
        return p808.place_checks(trials, checks, seed)

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        return {
            "labels": ["1"],
            "question": self.question,
            "scale": SCALE.to_page(),
            "options": [{"value": value, "label": label} for value, label in SCALE.points],
        }

    def responses(self, trial: dict, ids: Sequence[str], response) -> list[dict[str, Any]]:
        return [score_row(trial["conditions"][0], 0, SCALE, response["choice"])]

    def frame(self, responses):
        return responses[(responses["response"] == "score") & (responses["scale"] == SCALE.name)].reset_index(drop=True)

    def analyse(self, frame, setup) -> dict[str, Any]:
        return {"mos": mos_table(frame)}

    def agreement_scores(self, frame, setup):
        return frame

    def report_section(self, report):
        from ...report.sections_listening import acr_section

        return acr_section(report)


def mos_table(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per condition: ratings, listeners, MOS, standard deviation and the t-based CI (P.1401's, over the ratings)."""
    rows = []
    for condition, group in frame.groupby("condition", sort=False):
        scores = group["score"].to_numpy(float)
        n = len(scores)
        sd = float(np.std(scores, ddof=1)) if n > 1 else float("nan")
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)) if n > 1 else float("nan")
        mos = float(scores.mean())
        rows.append(
            {
                "condition": condition,
                "ratings": n,
                "listeners": group["participant"].nunique(),
                "mos": mos,
                "sd": sd,
                "ci_low": mos - half,
                "ci_high": mos + half,
            }
        )
    columns = ["condition", "ratings", "listeners", "mos", "sd", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns).sort_values("mos", ascending=False, ignore_index=True)


TYPE = AcrType()
