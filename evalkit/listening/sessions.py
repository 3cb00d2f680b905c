"""A listener's session in the database: who a token belongs to, the session row, its plan and its pages.

The step functions of listener.py write through these; `create_session` draws the whole plan
(the type's trials, the environment checks, the level-check signal) from the test seed and the
listener's arrival order, so that it can be reproduced from two stored numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ..store.models import utcnow
from ..store.models_mushra import (
    MushraCondition,
    MushraEvent,
    MushraItem,
    MushraParticipant,
    MushraPlay,
    MushraSession,
    MushraTest,
)
from . import environment
from .crowd import completion_link
from .flow import ENDS, PLAN_KEYS, AccessError, FlowError, State, require
from .pages import Page, build_page, page_ids
from .playlog import DEFAULT_MIN_PLAY_S, events_from_rows, heard_and_needed
from .spec import min_play_for
from .tokens import new_secret, token_hash
from .types import Condition, Item, get_type

__all__ = [
    "participant",
    "session",
    "locked",
    "create_session",
    "trial_page",
    "page",
    "plays",
    "page_duration",
    "min_play",
    "event",
    "GRANT_HOURS",
    "expired",
    "looping",
]

GRANT_HOURS = 2  # audio URLs live 1 to 2 hours (stable within a clock hour, so a reload can use the cache)


def participant(connection: Connection, token: str) -> tuple[Any, Any]:
    """(participant: id, code and panel, test row) behind an access token, in one query: it runs on every request."""
    p = MushraParticipant
    test = connection.execute(
        select(
            MushraTest,
            p.id.label("participant_id"),
            p.code.label("participant_code"),
            p.panel,
            p.panel_id,
            p.panel_info,
        )
        .join(p, p.test_id == MushraTest.id)
        .where(p.token_hash == token_hash(str(token)))
    ).first()
    if test is None:
        raise AccessError("this link is not valid; check that it was copied completely")
    if test.status != "open":
        raise FlowError("this test has not started yet" if test.status == "draft" else "this test is closed; thank you")
    who = SimpleNamespace(
        id=test.participant_id,
        code=test.participant_code,
        panel=test.panel,
        panel_id=test.panel_id,
        panel_info=test.panel_info,
    )
    return who, test


def session(connection: Connection, participant_id: int, lock: bool = False) -> Any:
    query = select(MushraSession).where(MushraSession.participant_id == participant_id)
    return connection.execute(query.with_for_update() if lock else query).first()


def expired(row: Any, now: datetime | None = None) -> bool:
    """Past the session's time limit and not finished."""
    return row.deadline is not None and row.phase not in ENDS and (now or utcnow()) > row.deadline


def locked(connection: Connection, token: str) -> tuple[Any, Any, Any]:
    """(participant, test, session) with the session row locked for a step; FlowError past the time limit."""
    who, test = participant(connection, token)
    row = session(connection, who.id, lock=True)  # PostgreSQL: serialises racing steps
    if row is None:
        raise FlowError("this session has not started yet; open the link again")
    if expired(row):
        raise FlowError("the time for this test has run out; thank you for your time")
    return who, test, row


def trial_page(test: Any, row: Any, phase: str, position: int) -> tuple[dict, str | None, list[str]]:
    """The plan's page a listener says they are on (trial, reference id, slot ids); FlowError when they are not."""
    # A page sends a name; anything else (a list, an object) is as unknown as a wrong name, not a server error.
    session_phase = {key: name for name, key in PLAN_KEYS.items()}.get(phase) if isinstance(phase, str) else None
    if session_phase is None:
        raise FlowError(f"unknown trial phase {str(phase)[:40]!r}")
    require(State(row.phase, row.position), session_phase, position)
    return page_ids(row, phase, position, get_type(test.test_type).labelled_reference)


def create_session(connection: Connection, who: Any, test: Any) -> None:
    ordinal = connection.execute(
        select(func.coalesce(func.max(MushraSession.ordinal) + 1, 0)).where(MushraSession.test_id == test.id)
    ).scalar_one()
    items = connection.execute(
        select(MushraItem.id, MushraItem.key, MushraItem.training)
        .where(MushraItem.test_id == test.id)
        .order_by(MushraItem.position)
    ).all()
    conditions = [
        Condition(row.id, row.key, row.kind)
        for row in connection.execute(
            select(MushraCondition.id, MushraCondition.key, MushraCondition.kind)
            .where(MushraCondition.test_id == test.id)
            .order_by(MushraCondition.position)
        ).all()
    ]
    kind = get_type(test.test_type)
    chosen = [Item(i.id, i.key) for i in items]
    plan = kind.plan(test.seed, ordinal, chosen, [i for i in chosen if _training(items, i.id)], conditions, test.spec)
    references = [c.id for c in conditions if c.kind == "reference"]
    level = references[0] if references else conditions[0].id
    plan.update(
        reference=level if kind.labelled_reference else None,
        level_condition=level,
        level_item=next((i.id for i in items if i.training), items[0].id),
        environment=environment.session_trials(test.spec.get("environment") or [], plan["seed"]),
    )
    now = utcnow()
    limit = (test.spec.get("crowd") or {}).get("time_limit_minutes")
    result = connection.execute(
        insert(MushraSession).values(
            test_id=test.id,
            participant_id=who.id,
            ordinal=ordinal,
            seed=plan["seed"],
            secret=new_secret(),
            plan=plan,
            phase="consent",
            position=0,
            started_at=now,
            step_started_at=now,
            updated_at=now,
            deadline=None if limit is None else now + timedelta(minutes=limit),
        )
    )
    event(connection, test.id, result.inserted_primary_key[0], "start", {"ordinal": ordinal})


def _training(items: list, item_id: int) -> bool:
    return next(i.training for i in items if i.id == item_id)


def page(connection: Connection, test: Any, row: Any, who: Any, now: datetime) -> Page:
    durations = dict(
        connection.execute(select(MushraItem.id, MushraItem.duration).where(MushraItem.test_id == test.id)).all()
    )
    heard = None
    key = PLAN_KEYS.get(row.phase)
    if key is not None and not expired(row, now):
        trial = row.plan[key][row.position]
        duration = trial.get("duration") or durations[trial["item"]]
        events = events_from_rows(plays(connection, row.id, key, row.position))
        heard = heard_and_needed(events, now.timestamp(), duration, looping(test, key), min_play(test, key, duration))
    expires = (int(now.timestamp()) // 3600 + GRANT_HOURS) * 3600
    finish = None
    if row.phase in ENDS:
        finish = completion_link(
            test.spec.get("crowd") or {},
            who.panel,
            who.panel_id,
            who.panel_info,
            row.completion_code,
            screened_out=row.phase == "screened_out",
        )
    return build_page(test.spec, row, who.code, durations, expires, heard, test.test_type, finish, expired(row, now))


def plays(connection: Connection, session_id: int, phase: str, position: int) -> list[Any]:
    return connection.execute(
        select(MushraPlay)
        .where(MushraPlay.session_id == session_id, MushraPlay.phase == phase, MushraPlay.position == position)
        .order_by(MushraPlay.id)
    ).all()


def page_duration(connection: Connection, trial: dict) -> float:
    if trial.get("duration"):
        return float(trial["duration"])
    return connection.execute(select(MushraItem.duration).where(MushraItem.id == trial["item"])).scalar_one()


def looping(test: Any, key: str) -> bool:
    return key != "environment" and test.spec["looping"]


def min_play(test: Any, key: str, duration: float) -> float:
    spec = {"min_play_seconds": "all"} if key == "environment" else test.spec
    return min_play_for(spec, duration, DEFAULT_MIN_PLAY_S)


def event(connection: Connection, test_id: int, session_id: int | None, kind: str, payload: Any) -> None:
    connection.execute(
        insert(MushraEvent).values(
            test_id=test_id, session_id=session_id, kind=kind, payload=payload, created_at=utcnow()
        )
    )
