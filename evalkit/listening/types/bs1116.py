"""BS.1116 (ITU-R BS.1116-3): double-blind triple stimulus with hidden reference, graded on the 1.0-5.0 impairment scale.

Each page has the labelled reference and two stimuli, A and B: one is the coded signal, the other
the hidden reference, which one is drawn per session and page. The listener grades both A and B
(one decimal); the hidden reference should get 5.0. Every (item, coded condition) pair is one trial.

The statistic is the subjective difference grade, SDG = grade of the coded signal minus grade of
the hidden reference (0: transparent, -4: very annoying), per condition with a t-based 95 % CI.
Post-screening (BS.1116-3 section 10.3) leaves out listeners who cannot tell the hidden reference:
those whose SDGs are not significantly below 0 (one-sided t-test, `post_screening.alpha`) and those
who graded the hidden reference below the coded signal (positive SDG) in more than
`post_screening.max_misidentified` of their trials. Each exclusion keeps its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .acr import mos_table
from .base import Scale, TestType, score_row
from .ccr import CcrType

__all__ = ["DEFAULT_SCREENING", "SCALE", "TYPE", "Bs1116Type", "screen_listeners", "sdg_frame", "sdg_table"]

# The five-grade impairment scale: continuous from 1.0 to 5.0, one decimal; the labels name the whole grades
# (a band whose low equals its high is a labelled point).
SCALE = Scale(
    "bs1116",
    1.0,
    5.0,
    bands=(
        ("Imperceptible", 5.0, 5.0),
        ("Perceptible, but not annoying", 4.0, 4.0),
        ("Slightly annoying", 3.0, 3.0),
        ("Annoying", 2.0, 2.0),
        ("Very annoying", 1.0, 1.0),
    ),
    step=0.1,
)
DEFAULT_SCREENING = {"alpha": 0.05, "max_misidentified": 0.25}

INSTRUCTIONS = (
    "Use headphones in a quiet room. On each page you hear the reference and two versions, A and B, of the same "
    "recording. One of A and B is identical to the reference, the other may be impaired. Grade both A and B "
    "against the reference from 5.0 (imperceptible) to 1.0 (very annoying); give 5.0 to the one you think is the "
    "reference. You may replay and switch as often as you like."
)


def one_decimal(value: Any) -> bool:
    """A grade on the scale with at most one decimal (what the page's slider can give)."""
    return SCALE.valid(value) and abs(value * 10 - round(value * 10)) < 1e-6


class Bs1116Type(TestType):
    name = "bs1116"
    title = "BS.1116 (ITU-R BS.1116-3)"
    view = "triple"
    reference = "required"
    labelled_reference = True
    scale = SCALE
    question = "Grade A and B against the reference"
    keys = frozenset({"trials_per_session", "post_screening"})
    needs_training = True
    defaults = {"looping": True, "min_play_seconds": 1.0, "trial_order": "random", "instructions": INSTRUCTIONS}

    def read_options(self, check, data: dict, items: tuple, conditions: tuple, base: Path) -> dict[str, Any]:
        if not any(c.kind != "reference" for c in conditions):
            check.fail("conditions", "a BS.1116 test needs at least one condition besides the reference")
        per_session = data.get("trials_per_session")
        screening = dict(DEFAULT_SCREENING)
        if data.get("post_screening") is not None:
            given = check.mapping(data["post_screening"], "post_screening", set(DEFAULT_SCREENING))
            if "alpha" in given:  # null switches the t-test off
                screening["alpha"] = (
                    None
                    if given["alpha"] is None
                    else check.number(given["alpha"], "post_screening.alpha", above=0, high=0.5)
                )
            if "max_misidentified" in given:
                screening["max_misidentified"] = check.number(
                    given["max_misidentified"], "post_screening.max_misidentified", 0, 1
                )
        return {
            "trials_per_session": None
            if per_session is None
            else check.integer(per_session, "trials_per_session", 1, len(items) * (len(conditions) - 1)),
            "post_screening": screening,
        }

    def advise(self, check, items: tuple, conditions: tuple, shared: dict) -> None:
        if len(items) < 5:
            check.warn("items", f"{len(items)} items; BS.1116-3 asks for critical material, usually 5 or more items")

    # CCR's trials: the reference paired with each coded condition of each item, the pair's order drawn per page
    # (here: which of A and B is the hidden reference)
    design = CcrType.design
    arrange = CcrType.arrange

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        return {"labels": ["A", "B"], "question": self.question, "scale": SCALE.to_page()}

    def missing(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[str]:
        return [
            f"{label} not graded (1.0 to 5.0, one decimal)"
            for label, stimulus in zip("AB", ids)
            if not one_decimal(response.get(stimulus))
        ]

    def answer(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> Any:
        grades = [response.get(stimulus) for stimulus in ids]
        return grades if all(one_decimal(g) for g in grades) else None

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        a, b = trial["conditions"]
        return [
            score_row(a, 0, SCALE, round(float(response[ids[0]]), 1), other=b),
            score_row(b, 1, SCALE, round(float(response[ids[1]]), 1), other=a),
        ]

    def frame(self, responses):
        return responses[(responses["response"] == "score") & (responses["scale"] == SCALE.name)].reset_index(drop=True)

    def screen(self, frame, setup):
        options = (setup.options or {}).get("post_screening") or DEFAULT_SCREENING
        return screen_listeners(sdg_frame(frame), **options)

    def analyse(self, frame, setup) -> dict[str, Any]:
        return {"sdg": sdg_table(sdg_frame(frame))}

    def agreement_scores(self, frame, setup):
        """The SDG per (listener, item, condition): the coded conditions' grades net of the hidden reference's."""
        return sdg_frame(frame).rename(columns={"sdg": "score"})

    def report_section(self, report):
        from ...report.sections_listening import bs1116_section

        return bs1116_section(report)


def sdg_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: participant, item, coded condition, both grades and SDG (coded minus hidden reference)."""
    columns = ["participant", "trial", "item", "condition", "grade", "reference_grade", "sdg"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    keys = ["participant", "trial"]
    hidden = frame[frame["kind"] == "reference"][[*keys, "score"]].rename(columns={"score": "reference_grade"})
    coded = frame[frame["kind"] != "reference"][[*keys, "item", "condition", "score"]].rename(
        columns={"score": "grade"}
    )
    pairs = coded.merge(hidden, on=keys, how="inner")
    return pairs.assign(sdg=pairs["grade"] - pairs["reference_grade"])[columns].reset_index(drop=True)


def sdg_table(sdgs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per coded condition: trials, listeners, mean SDG with its sd and t-based CI, mean grades of both stimuli."""
    table = mos_table(sdgs.rename(columns={"sdg": "score"}), confidence).rename(
        columns={"mos": "sdg", "ratings": "trials"}
    )
    means = sdgs.groupby("condition")[["grade", "reference_grade"]].mean()
    return table.join(means, on="condition").sort_values("sdg", ascending=False, ignore_index=True)


def screen_listeners(sdgs: pd.DataFrame, alpha: float | None = 0.05, max_misidentified: float = 0.25):
    """BS.1116-3 post-screening: who cannot tell the hidden reference from the coded signal is left out, with reasons."""
    from ..screening import outcome_from_reasons

    rows, reasons = [], {}
    for participant, group in sdgs.groupby("participant"):
        values = group["sdg"].to_numpy(float)
        positive = float((values > 0).mean())
        if len(values) > 1 and np.std(values) > 0:
            p = float(stats.ttest_1samp(values, 0.0, alternative="less").pvalue)
        else:  # no spread: below 0 is certain when every SDG is, impossible otherwise
            p = 0.0 if values.size and values.max() < 0 else 1.0
        why = []
        if alpha is not None and p >= alpha:
            why.append(
                f"mean SDG {values.mean():+.2f} over {len(values)} trial(s) is not significantly below 0 "
                f"(one-sided t-test p={p:.3g} >= {alpha:g})"
            )
        if positive > max_misidentified:
            why.append(
                f"graded the hidden reference below the coded signal in {positive:.0%} of trials "
                f"(more than {max_misidentified:.0%})"
            )
        reasons[participant] = "; ".join(why)
        rows.append(
            {
                "participant": participant,
                "trials": len(values),
                "mean_sdg": float(values.mean()),
                "p_value": p,
                "positive_share": positive,
                "reason": reasons[participant],
            }
        )
    table = pd.DataFrame(rows, columns=["participant", "trials", "mean_sdg", "p_value", "positive_share", "reason"])
    rule = "BS.1116-3 post-screening (hidden reference identified)"
    if sdgs.empty:
        from ..screening import Outcome

        return Outcome((), {}, table, rule)
    return outcome_from_reasons(sdgs, reasons, rule, table)


TYPE = Bs1116Type()
