"""Reading a test back: live progress per listener, tidy responses (one row per score or choice), CSV export.

`responses_frame` has every typed response of any test type; `ratings_frame` the scores of a test
in the layout MUSHRA's analysis and the ratings import/export use (one row per rating, `slider`
its slot).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, case, func, select

from ..errors import ConfigError
from ..store.models_mushra import (
    MushraCondition,
    MushraItem,
    MushraParticipant,
    MushraResponse,
    MushraSession,
    MushraTest,
    MushraTrial,
)

__all__ = [
    "progress",
    "progress_summary",
    "ratings_frame",
    "responses_frame",
    "export_ratings_csv",
    "RATING_COLUMNS",
    "RESPONSE_COLUMNS",
]

RATING_COLUMNS = [
    "test",
    "participant",
    "source",
    "ordinal",
    "completed",
    "trial",
    "item",
    "condition",
    "kind",
    "slider",
    "score",
    "submitted_at",
]
RESPONSE_COLUMNS = [
    "test",
    "participant",
    "source",
    "ordinal",
    "completed",
    "trial",
    "item",
    "condition",
    "kind",
    "other",
    "slot",
    "response",
    "scale",
    "score",
    "choice",
    "chosen",
    "submitted_at",
]


def _test_id(connection, name: str) -> int:
    test_id = connection.execute(select(MushraTest.id).where(MushraTest.name == name)).scalar()
    if test_id is None:
        raise ConfigError(f"no listening test named {name!r}")
    return test_id


def progress(engine: Engine, name: str) -> pd.DataFrame:
    """One row per participant (invited or arrived): phase, trials done of total, times."""
    p, s = MushraParticipant, MushraSession
    with engine.connect() as connection:
        test_id = _test_id(connection, name)
        done = (
            select(MushraTrial.session_id, func.count().label("n"))
            .where(MushraTrial.phase == "test")
            .group_by(MushraTrial.session_id)
            .subquery()
        )
        rows = connection.execute(
            select(
                p.code,
                p.source,
                p.label,
                p.created_at,
                s.ordinal,
                s.phase,
                s.plan,
                s.started_at,
                s.updated_at,
                s.completed_at,
                s.completion_code,
                func.coalesce(done.c.n, 0).label("trials_done"),
            )
            .select_from(p)
            .outerjoin(s, s.participant_id == p.id)
            .outerjoin(done, done.c.session_id == s.id)
            .where(p.test_id == test_id)
            .order_by(p.id)
        ).all()
    frame = pd.DataFrame(
        [
            {
                **row._mapping,
                "phase": row.phase or "invited",
                "trials_total": len(row.plan["test"]) if row.plan else None,
            }
            for row in rows
        ],
        columns=[
            "code",
            "source",
            "label",
            "created_at",
            "ordinal",
            "phase",
            "plan",
            "started_at",
            "updated_at",
            "completed_at",
            "completion_code",
            "trials_done",
            "trials_total",
        ],
    )
    return frame.drop(columns="plan").rename(columns={"code": "participant"})


def progress_summary(engine: Engine, name: str) -> dict[str, int]:
    """Counts for a dashboard: participants, started, completed, and how many stand in each phase."""
    frame = progress(engine, name)
    counts = frame["phase"].value_counts().to_dict()
    return {
        "participants": len(frame),
        "started": int((frame["phase"] != "invited").sum()),
        "completed": int(counts.get("done", 0)),
        "ratings_trials": int(frame["trials_done"].sum()),
        **{f"phase_{phase}": int(count) for phase, count in counts.items()},
    }


def responses_frame(engine: Engine, name: str, completed_only: bool = False) -> pd.DataFrame:
    """Every stored response (training is never stored), typed: `response` is score (with its `scale`) or
    choice (the label picked and the condition it names, `chosen`); `other` the condition compared with."""
    r, t, s, p = MushraResponse, MushraTrial, MushraSession, MushraParticipant
    c, i = MushraCondition, MushraItem
    other, chosen = c.__table__.alias("other"), c.__table__.alias("chosen")
    with engine.connect() as connection:
        test_id = _test_id(connection, name)
        # An imported listener's own id is its label (codes are unique across tests, ids need not be).
        participant = case((p.source == "import", p.label), else_=p.code).label("participant")
        query = (
            select(
                participant,
                p.source,
                s.ordinal,
                s.completed_at.is_not(None).label("completed"),
                t.position.label("trial"),
                i.key.label("item"),
                c.key.label("condition"),
                c.kind,
                other.c.key.label("other"),
                r.slot,
                r.kind.label("response"),
                r.scale,
                r.score,
                r.choice,
                chosen.c.key.label("chosen"),
                t.submitted_at,
            )
            .select_from(r)
            .join(t, t.id == r.trial_id)
            .join(s, s.id == r.session_id)
            .join(p, p.id == s.participant_id)
            .join(c, c.id == r.condition_id)
            .join(i, i.id == r.item_id)
            .outerjoin(other, other.c.id == r.other_condition_id)
            .outerjoin(chosen, chosen.c.id == r.chosen_condition_id)
            .where(s.test_id == test_id)
        )
        if completed_only:
            query = query.where(s.completed_at.is_not(None))
        rows = connection.execute(query).all()
    frame = pd.DataFrame([dict(row._mapping) for row in rows], columns=RESPONSE_COLUMNS[1:])
    frame.insert(0, "test", name)
    # Sorted here, not by ORDER BY: PostgreSQL's collation would order strings unlike SQLite.
    return frame.sort_values(["ordinal", "trial", "slot"], ignore_index=True).astype(
        {"score": "float64", "completed": "bool", "ordinal": "int64", "trial": "int64", "slot": "int64"}
    )


def ratings_frame(engine: Engine, name: str, completed_only: bool = False) -> pd.DataFrame:
    """Every stored score (training excluded: it is never stored), one row per rating, `slider` its slot."""
    frame = responses_frame(engine, name, completed_only)
    frame = frame[frame["response"] == "score"].rename(columns={"slot": "slider"})
    return frame[RATING_COLUMNS].reset_index(drop=True)


def export_ratings_csv(
    engine: Engine, name: str, path: str | Path | None = None, completed_only: bool = False
) -> str | Path:
    """The ratings as CSV: written to `path` (returned), or returned as text when no path is given."""
    from .safetext import spreadsheet_safe

    frame = spreadsheet_safe(ratings_frame(engine, name, completed_only))
    if path is None:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
