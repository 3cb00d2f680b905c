"""Who a test's statistics keep: the outcome every type's screening returns, and the rule that keeps everyone.

A type's `screen(frame, setup)` returns an object with `kept` (participants), `excluded`
(participant -> reason), `table` (one row per participant) and `describe()`; MUSHRA's BS.1534-3
post-screening (evalkit.mushra.screening) returns the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Outcome", "keep_everyone", "outcome_from_reasons"]


@dataclass(frozen=True)
class Outcome:
    kept: tuple[str, ...]
    excluded: dict[str, str]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    rule: str = "no screening (every listener kept)"

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of the kept listeners only."""
        return frame[frame["participant"].isin(self.kept)].reset_index(drop=True)

    def describe(self) -> str:
        return f"{self.rule}: {len(self.kept)} listener(s) kept, {len(self.excluded)} excluded"


def keep_everyone(frame: pd.DataFrame) -> Outcome:
    people = tuple(sorted(frame["participant"].unique())) if "participant" in frame else ()
    return Outcome(people, {}, pd.DataFrame({"participant": list(people), "reason": ""}))


def outcome_from_reasons(
    frame: pd.DataFrame, reasons: dict[str, str], rule: str, table: pd.DataFrame | None = None
) -> Outcome:
    """Keep every participant of `frame` that `reasons` gives no (non-empty) reason to exclude."""
    people = sorted(frame["participant"].unique())
    excluded = {p: r for p, r in reasons.items() if r and p in set(people)}
    if table is None:
        table = pd.DataFrame({"participant": people, "reason": [reasons.get(p, "") for p in people]})
    return Outcome(tuple(p for p in people if p not in excluded), excluded, table, rule)
