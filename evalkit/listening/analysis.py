"""A test's responses ready for its type's statistics: typed responses, recorded rejections, screening.

`load_test` reads a test of any type: its declared setup, its responses (completed sessions by
default), the participants whose sessions a rule rejected (failed gold or trapping clips, constant
ratings, time limit; recorded in mushra_rejections), and the type's own screening over the rest.
The statistics, the report and the admin pages all start here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, select

from ..store.models_mushra import MushraParticipant, MushraRejection, MushraSession, MushraTest
from .responses import responses_frame
from .types import TestType, get_type

__all__ = ["LoadedTest", "load_test", "rejected_participants"]


@dataclass
class LoadedTest:
    """A test's responses, the type's analysis frame, who was rejected or screened out, and the kept rows."""

    test_id: int
    name: str
    type: TestType
    setup: Any  # evalkit.mushra.design.TestSetup: declared conditions, roles, origin
    responses: pd.DataFrame
    frame: pd.DataFrame  # the type's tidy analysis frame (participant, item, condition, score, ...)
    rejected: dict[str, str] = field(default_factory=dict)  # participant -> recorded rejection reasons
    screening: Any = None  # the type's screening outcome (kept, excluded, describe())
    kept: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def excluded(self) -> dict[str, str]:
        """participant -> why they are left out: a recorded rejection or the type's screening."""
        screened = self.screening.excluded if self.screening is not None else {}
        return {**self.rejected, **screened}

    def describe(self) -> str:
        rejected = f"{len(self.rejected)} session(s) rejected by recorded rules; " if self.rejected else ""
        return rejected + (self.screening.describe() if self.screening is not None else "no responses yet")


def rejected_participants(engine: Engine, name: str, rules_except: tuple[str, ...] = ("screening",)) -> dict[str, str]:
    """participant -> the reasons recorded for rejecting their session (all rules but `rules_except`)."""
    p, s, r = MushraParticipant, MushraSession, MushraRejection
    who = case((p.source == "import", p.label), else_=p.code)
    with engine.connect() as connection:
        rows = connection.execute(
            select(who.label("participant"), r.rule, r.reason)
            .join(s, s.id == r.session_id)
            .join(p, p.id == s.participant_id)
            .join(MushraTest, MushraTest.id == r.test_id)
            .where(MushraTest.name == name, r.rule.not_in(rules_except))
        ).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.participant, []).append(f"{row.rule}: {row.reason}")
    return {participant: "; ".join(reasons) for participant, reasons in found.items()}


def load_test(engine: Engine, name: str, completed_only: bool = True, screen: bool = True) -> LoadedTest:
    """Everything a test's statistics need; sessions with recorded rejections are left out before screening."""
    from ..mushra.design import test_setup

    setup = test_setup(engine, name)
    with engine.connect() as connection:
        test_id = connection.execute(select(MushraTest.id).where(MushraTest.name == name)).scalar_one()
    kind = get_type(setup.test_type)
    responses = responses_frame(engine, name, completed_only)
    frame = kind.frame(responses)
    loaded = LoadedTest(test_id, name, kind, setup, responses, frame, rejected_participants(engine, name))
    usable = frame[~frame["participant"].isin(loaded.rejected)].reset_index(drop=True) if len(frame) else frame
    if usable.empty:
        loaded.kept = usable
        return loaded
    loaded.screening = kind.screen(usable, setup) if screen else None
    loaded.kept = loaded.screening.apply(usable) if loaded.screening is not None else usable
    return loaded
