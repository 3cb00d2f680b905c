"""Which sessions the statistics use, and warnings where the numbers would mislead.

Statistics take completed sessions by default: a listener who stopped halfway rated some items
only, which unbalances the item effects (and the repeated-measures ANOVA drops them anyway).
`statistics_ratings` says in words what was chosen. `degenerate_warnings` lists what makes the
numbers of a ratings frame meaningless or overconfident (one listener, two identical listeners,
no residual variance so that F = infinity, a condition rated all alike), to be shown with them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from ..listening.responses import ratings_frame

__all__ = ["statistics_ratings", "degenerate_warnings"]


def statistics_ratings(engine: Engine, name: str, include_incomplete: bool = False) -> tuple[pd.DataFrame, str]:
    """The ratings the statistics use and a sentence saying which sessions they come from."""
    every = ratings_frame(engine, name)
    chosen = every if include_incomplete else every[every["completed"]].reset_index(drop=True)
    done = every.loc[every["completed"], "participant"].nunique()
    unfinished = every.loc[~every["completed"], "participant"].nunique()
    if include_incomplete:
        note = f"{done} completed and {unfinished} unfinished session(s), all their ratings"
    else:
        note = f"{done} completed session(s)" + (f"; {unfinished} unfinished left out" if unfinished else "")
    return chosen, note


def degenerate_warnings(frame: pd.DataFrame) -> list[str]:
    """Plain sentences about what makes the statistics of `frame` (tidy ratings) degenerate."""
    if frame.empty:
        return []
    found = []
    listeners = frame["participant"].nunique()
    if listeners < 2:
        found.append(
            f"only {listeners} listener: there is no spread between listeners, so intervals and tests "
            "are undefined or meaningless"
        )
    found += _identical_listeners(frame)
    found += _no_residual(frame)
    for condition, scores in frame.groupby("condition", sort=True)["score"]:
        if len(scores) > 1 and scores.nunique() == 1:
            found.append(
                f"every rating of {condition} is {scores.iloc[0]:g} ({len(scores)} ratings): its interval "
                "has zero width and a test against it compares with a constant"
            )
    return found


def _identical_listeners(frame: pd.DataFrame) -> list[str]:
    wide = frame.pivot_table(index="participant", columns=["item", "condition"], values="score", aggfunc="mean")
    groups: dict[tuple, list[str]] = {}
    for participant, row in wide.iterrows():
        groups.setdefault(tuple(np.round(row.to_numpy(dtype=float), 6)), []).append(participant)
    return [
        f"listeners {', '.join(same)} gave identical ratings on every trial (the same person twice, or a "
        "script?): tests that count them as independent listeners are overconfident"
        for same in groups.values()
        if len(same) > 1
    ]


def _no_residual(frame: pd.DataFrame) -> list[str]:
    from .anova import rm_anova

    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # the degenerate case is what we look for
            table = rm_anova(frame)
    except ValueError:
        return []
    bad = [effect for effect, f in table["F"].items() if not np.isfinite(f)]
    return (
        [
            f"F = ∞ for {', '.join(bad)}: the listeners' ratings have no residual variance (they agree exactly), "
            "so these F and p values say nothing"
        ]
        if bad
        else []
    )
