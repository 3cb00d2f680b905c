"""The listener's side, on the database: enter with a token, take each step, fetch stimulus audio.

All state lives in mushra_sessions, so a listener who closes the tab and opens the link again
lands exactly where they stood. Every step is one write transaction that first locks the session
row and checks that the step fits the stored state (a stale tab or a double click gets a
FlowError, never a second copy of a trial); a trial's ratings, play log and timing are committed
together with the move to the next page, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..store.db import write_transaction
from ..store.models import utcnow
from ..store.models_mushra import (
    MushraCondition, MushraEvent, MushraItem, MushraParticipant, MushraRating, MushraSession, MushraStimulus,
    MushraTest, MushraTrial,
)
from .flow import PLAN_KEYS, FlowError, State, advance, as_play, blockers, require
from .randomize import make_plan
from .spec_parts import Question
from .stimuli import DISGUISE_BYTES, disguise
from .tokens import completion_code, new_secret, resolve_stimulus, stimulus_nonce, token_hash, trial_ids
from .views import Page, build_page

__all__ = [
    "AnswerError", "enter", "current_page", "accept_consent", "finish_instructions", "confirm_level",
    "submit_trial", "submit_questionnaire", "stimulus_audio", "log_event",
]

_RETRIES = 5


class AnswerError(FlowError):
    """Questionnaire answers that cannot be stored; `problems` maps question id -> message."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def enter(engine: Engine, token: str) -> Page:
    """Open (first visit: create) the listener's session and return the page they stand on."""
    for attempt in range(_RETRIES):
        try:
            with write_transaction(engine) as connection:
                participant, test = _participant(connection, token)
                session = _session(connection, participant.id)
                if session is None:
                    _create_session(connection, participant, test)
                else:
                    _event(connection, test.id, session.id, "resume", {"phase": session.phase, "position": session.position})
            return current_page(engine, token)
        except IntegrityError:
            if attempt == _RETRIES - 1:  # two first visits raced for one ordinal, retry with the next
                raise
    raise AssertionError("unreachable")


def current_page(engine: Engine, token: str) -> Page:
    """The page to show now (read only); `enter` must have been called once."""
    with engine.connect() as connection:
        participant, test = _participant(connection, token)
        session = _session(connection, participant.id)
        if session is None:
            raise FlowError("this session has not started yet; open the link again")
        return _page(connection, test, session, participant)


def accept_consent(engine: Engine, token: str) -> Page:
    return _simple_step(engine, token, "consent", "consent", {})


def finish_instructions(engine: Engine, token: str) -> Page:
    return _simple_step(engine, token, "instructions", "instructions_read", {})


def confirm_level(engine: Engine, token: str, settings: Mapping[str, Any] | None = None) -> Page:
    """The listener set a comfortable level on the level-check signal; `settings` is logged."""
    return _simple_step(engine, token, "level_check", "level_confirmed", _json(settings or {}, "level settings"))


def submit_trial(engine: Engine, token: str, phase: str, position: int, ratings: Mapping[str, Any],
                 plays: Sequence[Any], client: Mapping[str, Any] | None = None) -> Page:
    """Commit one trial page (ratings by opaque id, play log, client timing) and move on, atomically.

    `phase` and `position` are the TrialPage's; training ratings are checked but not stored.
    """
    session_phase = {key: phase_name for phase_name, key in PLAN_KEYS.items()}.get(phase)
    if session_phase is None:
        raise FlowError(f"unknown trial phase {phase!r}")
    with write_transaction(engine) as connection:
        participant, test, session = _locked(connection, token)
        require(State(session.phase, session.position), session_phase, position)
        trial = session.plan[phase][position]
        reference, ids = trial_ids(session.secret, phase, position, trial["sliders"])
        plays = [as_play(play) for play in plays]
        _check_trial(ids, reference, ratings, plays, phase == "test")
        keys = _condition_keys(connection, test.id)
        by_id = dict(zip(ids, trial["sliders"]))
        trial_id = _insert_trial(connection, session, phase, position, trial, plays, by_id, reference, keys, client)
        if phase == "test":
            _insert_ratings(connection, session.id, trial_id, trial["item"], by_id, ids, ratings)
        _move_on(connection, test, session)
    return current_page(engine, token)


def submit_questionnaire(engine: Engine, token: str, answers: Mapping[str, Any]) -> Page:
    """Store the answers (checked per question; AnswerError lists every problem) and finish."""
    with write_transaction(engine) as connection:
        participant, test, session = _locked(connection, token)
        require(State(session.phase, session.position), "questionnaire")
        stored, problems = {}, {}
        for question in (Question(**{**q, "choices": tuple(q["choices"])}) for q in test.spec["questionnaire"]):
            try:
                stored[question.id] = question.answer(answers.get(question.id))
            except ValueError as err:
                problems[question.id] = str(err)
        if problems:
            raise AnswerError(problems)
        connection.execute(update(MushraSession).where(MushraSession.id == session.id).values(answers=stored))
        _move_on(connection, test, session)
    return current_page(engine, token)


def stimulus_audio(engine: Engine, token: str, stimulus: str) -> bytes:
    """The lossless audio bytes behind an opaque id of the page the listener stands on, disguised:
    every stimulus of an item comes at one size and with a nonce of its own (see `disguise`)."""
    with engine.connect() as connection:
        participant, test = _participant(connection, token)
        session = _session(connection, participant.id)
        page = _current_scope(session)
        found = None if page is None else resolve_stimulus(session.secret, session.plan, stimulus, page)
        if found is None:
            raise FlowError("unknown stimulus for this page; reload the page")
        files = {row.condition_id: row for row in connection.execute(
            select(MushraStimulus.condition_id, MushraStimulus.path, MushraStimulus.sha256).where(
                MushraStimulus.item_id == found[0]))}
    folder = Path(test.stimulus_dir)
    size = _served_size(tuple((str(folder / row.path), row.sha256) for row in files.values()))
    row = files[found[1]]
    return disguise(_read(str(folder / row.path), row.sha256), test.spec["format"], size,
                    stimulus_nonce(session.secret, stimulus))


def log_event(engine: Engine, token: str, kind: str, payload: Mapping[str, Any] | None = None) -> None:
    """Keep something the page reports (audio context resumed, loop set, ...); kind is up to 64 characters."""
    if not isinstance(kind, str) or not 0 < len(kind) <= 64:
        raise FlowError("an event kind is a string of 1 to 64 characters")
    with write_transaction(engine) as connection:
        participant, test = _participant(connection, token)
        session = _session(connection, participant.id)
        _event(connection, test.id, None if session is None else session.id, kind, _json(payload, "event payload"))


# -- helpers -------------------------------------------------------------------------------


def _participant(connection: Connection, token: str) -> tuple[Any, Any]:
    row = connection.execute(select(MushraParticipant).where(MushraParticipant.token_hash == token_hash(str(token)))).first()
    if row is None:
        raise FlowError("this link is not valid; check that it was copied completely")
    test = connection.execute(select(MushraTest).where(MushraTest.id == row.test_id)).one()
    if test.status != "open":
        raise FlowError("this test has not started yet" if test.status == "draft" else "this test is closed; thank you")
    return row, test


def _session(connection: Connection, participant_id: int, lock: bool = False) -> Any:
    query = select(MushraSession).where(MushraSession.participant_id == participant_id)
    return connection.execute(query.with_for_update() if lock else query).first()


def _locked(connection: Connection, token: str) -> tuple[Any, Any, Any]:
    participant, test = _participant(connection, token)
    session = _session(connection, participant.id, lock=True)  # PostgreSQL: serialises racing steps
    if session is None:
        raise FlowError("this session has not started yet; open the link again")
    return participant, test, session


def _create_session(connection: Connection, participant: Any, test: Any) -> None:
    ordinal = connection.execute(select(func.coalesce(func.max(MushraSession.ordinal) + 1, 0))
                                 .where(MushraSession.test_id == test.id)).scalar_one()
    items = connection.execute(select(MushraItem.id, MushraItem.training).where(MushraItem.test_id == test.id)
                               .order_by(MushraItem.position)).all()
    conditions = connection.execute(select(MushraCondition.id).where(MushraCondition.test_id == test.id)
                                    .order_by(MushraCondition.position)).scalars().all()
    training = [item.id for item in items if item.training]
    plan = make_plan(test.seed, ordinal, [item.id for item in items], training, conditions, test.spec["trial_order"])
    plan.update(reference=conditions[0], level_item=(training or [items[0].id])[0])
    now = utcnow()
    result = connection.execute(insert(MushraSession).values(
        test_id=test.id, participant_id=participant.id, ordinal=ordinal, seed=plan["seed"], secret=new_secret(),
        plan=plan, phase="consent", position=0, started_at=now, step_started_at=now, updated_at=now))
    _event(connection, test.id, result.inserted_primary_key[0], "start", {"ordinal": ordinal})


def _page(connection: Connection, test: Any, session: Any, participant: Any) -> Page:
    durations = dict(connection.execute(select(MushraItem.id, MushraItem.duration)
                                        .where(MushraItem.test_id == test.id)).all())
    return build_page(test.spec, session, participant.code, durations)


def _simple_step(engine: Engine, token: str, phase: str, kind: str, payload: dict) -> Page:
    with write_transaction(engine) as connection:
        participant, test, session = _locked(connection, token)
        require(State(session.phase, session.position), phase)
        _event(connection, test.id, session.id, kind, payload)
        _move_on(connection, test, session)
    return current_page(engine, token)


def _move_on(connection: Connection, test: Any, session: Any) -> None:
    state = advance(State(session.phase, session.position), session.plan, bool(test.spec["questionnaire"]))
    now = utcnow()
    values = {"phase": state.phase, "position": state.position, "step_started_at": now, "updated_at": now}
    if state.phase == "done":
        values.update(completion_code=completion_code(), completed_at=now)
        _event(connection, test.id, session.id, "complete", None)
    connection.execute(update(MushraSession).where(MushraSession.id == session.id).values(values))


def _check_trial(ids: list[str], reference: str, ratings: Mapping[str, Any], plays: list, rated: bool) -> None:
    known = set(ids) | {reference}
    if unknown := [key for key in ratings if key not in ids] + [p.stimulus for p in plays if p.stimulus not in known]:
        raise FlowError(f"{len(unknown)} stimulus id(s) do not belong to this page; reload the page")
    if problems := blockers(ids, plays, ratings, require_ratings=rated):
        raise FlowError("not finished: " + ", ".join(f"slider {index + 1} {reason}" for index, reason in problems))


def _condition_keys(connection: Connection, test_id: int) -> dict[int, str]:
    return dict(connection.execute(select(MushraCondition.id, MushraCondition.key)
                                   .where(MushraCondition.test_id == test_id)).all())


def _insert_trial(connection, session, phase, position, trial, plays, by_id, reference, keys, client) -> int:
    """The trial row; the play log names conditions (server side), never the opaque ids."""
    log = [{"condition": keys[by_id.get(p.stimulus, session.plan["reference"])], "reference_button": p.stimulus == reference,
            "start": p.start, "end": p.end, "at": p.at} for p in plays]
    result = connection.execute(insert(MushraTrial).values(
        session_id=session.id, phase=phase, position=position, item_id=trial["item"],
        slider_order={"conditions": list(trial["sliders"])}, play_log={"plays": log},
        client=_json(client, "client timing"), started_at=session.step_started_at, submitted_at=utcnow()))
    return result.inserted_primary_key[0]


def _insert_ratings(connection, session_id, trial_id, item_id, by_id, ids, ratings) -> None:
    rows = [{"trial_id": trial_id, "session_id": session_id, "item_id": item_id, "condition_id": by_id[stimulus],
             "slider": slider, "score": float(ratings[stimulus])} for slider, stimulus in enumerate(ids)]
    connection.execute(insert(MushraRating), rows)


def _current_scope(session: Any) -> tuple[str, int] | None:
    if session is None:
        return None
    if session.phase == "level_check":
        return ("level", 0)
    key = PLAN_KEYS.get(session.phase)
    return None if key is None else (key, session.position)


def _event(connection: Connection, test_id: int, session_id: int | None, kind: str, payload: Any) -> None:
    connection.execute(insert(MushraEvent).values(test_id=test_id, session_id=session_id, kind=kind,
                                                  payload=payload, created_at=utcnow()))


def _json(value: Any, what: str) -> Any:
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise FlowError(f"{what} is not JSON: {err}") from None
    if len(text) > 100_000:
        raise FlowError(f"{what} is too large ({len(text)} characters)")
    return json.loads(text)


@lru_cache(maxsize=256)
def _served_size(files: tuple[tuple[str, str], ...]) -> int:
    """The one size every stimulus of an item is served at: its largest file plus room for a nonce.
    Keyed by paths and hashes, so a re-prepared test gets a new entry."""
    return max(Path(path).stat().st_size for path, _ in files) + DISGUISE_BYTES


@lru_cache(maxsize=64)
def _read(path: str, sha256: str) -> bytes:
    """Stimulus bytes, cached by path and content hash (a re-prepared test gets new entries)."""
    return Path(path).read_bytes()
