"""The listener's side, on the database: enter with a token, take each step, report plays, fetch audio.

All state lives in the database (mushra_sessions, and mushra_plays for the page in progress), so
a listener who reloads or closes the tab and opens the link again lands exactly where they stood,
with the plays they had made. Every step is one write transaction that first locks the session
row and checks that the step fits the stored state (a stale tab or a double click gets a
FlowError, never a second copy of a trial); a trial's ratings and play log are committed together
with the move to the next page, or not at all. What was heard is decided from the server's own
time stamps (playlog.py); the page's claims are kept as client notes only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..store.db import write_transaction
from ..store.models import utcnow
from ..store.models_mushra import (
    MushraCondition, MushraEvent, MushraItem, MushraParticipant, MushraPlay, MushraRating, MushraSession,
    MushraStimulus, MushraTest, MushraTrial,
)
from .flow import PLAN_KEYS, AccessError, FlowError, State, advance, blockers, require
from .playlog import (
    DEFAULT_MIN_PLAY_S, MAX_CLIENT_BYTES, MAX_CLIENT_EVENTS, MAX_EVENT_BYTES, MAX_PLAY_EVENTS, LimitError, PlayEvent,
    check_loop, check_offset, events_from_rows, heard_and_needed, limited_json, spans,
)
from .randomize import make_plan
from .spec_parts import Question
from .stimuli import deliver, read_stimulus
from .tokens import completion_code, dither_seed, grant_valid, new_secret, read_grant, resolve_stimulus, token_hash, trial_ids
from .views import Page, build_page

__all__ = [
    "AnswerError", "enter", "current_page", "accept_consent", "finish_instructions", "confirm_level", "record_play",
    "submit_trial", "submit_questionnaire", "stimulus_audio", "log_event", "GRANT_HOURS",
]

_RETRIES = 5
GRANT_HOURS = 2  # audio URLs live 1 to 2 hours (stable within a clock hour, so a reload can use the cache)
_EVENT_KIND = re.compile(r"^[a-z0-9_.-]{1,48}$")


class AnswerError(FlowError):
    """Questionnaire answers that cannot be stored; `problems` maps question id -> message."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def enter(engine: Engine, token: str, now: datetime | None = None) -> Page:
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
            return current_page(engine, token, now)
        except IntegrityError:
            if attempt == _RETRIES - 1:  # two first visits raced for one ordinal, retry with the next
                raise
    raise AssertionError("unreachable")


def current_page(engine: Engine, token: str, now: datetime | None = None) -> Page:
    """The page to show now (read only); `enter` must have been called once."""
    with engine.connect() as connection:
        participant, test = _participant(connection, token)
        session = _session(connection, participant.id)
        if session is None:
            raise FlowError("this session has not started yet; open the link again")
        return _page(connection, test, session, participant, now or utcnow())


def accept_consent(engine: Engine, token: str) -> Page:
    return _simple_step(engine, token, "consent", "consent", {})


def finish_instructions(engine: Engine, token: str) -> Page:
    return _simple_step(engine, token, "instructions", "instructions_read", {})


def confirm_level(engine: Engine, token: str, settings: Mapping[str, Any] | None = None) -> Page:
    """The listener set a comfortable level on the level-check signal; `settings` is logged."""
    return _simple_step(engine, token, "level_check", "level_confirmed",
                        limited_json(settings or {}, "the level settings", MAX_CLIENT_BYTES))


def record_play(engine: Engine, token: str, phase: str, position: int, stimulus: str | None, offset: float = 0.0,
                loop: Any = None, now: datetime | None = None) -> dict[str, tuple[float, float]]:
    """Stamp one play (`stimulus`, from `offset` s, with loop region `loop`) or stop (None) of the
    trial page `phase`/`position` with the server's clock; returns the page's (heard, needed) per id."""
    now = now or utcnow()
    with write_transaction(engine) as connection:
        participant, test, session = _locked(connection, token)
        trial, reference, ids = _trial_page(session, phase, position)
        if stimulus is not None and stimulus not in ids and stimulus != reference:
            raise FlowError("this stimulus does not belong to this page; reload the page")
        duration = _duration(connection, trial["item"])
        offset, region = check_offset(offset, duration), check_loop(loop, duration) or (0.0, duration)
        rows = _plays(connection, session.id, phase, position)
        if len(rows) >= MAX_PLAY_EVENTS:
            raise LimitError(f"{MAX_PLAY_EVENTS} plays on one page is the limit; rate the samples and press Next")
        connection.execute(insert(MushraPlay).values(
            session_id=session.id, phase=phase, position=position, stimulus=stimulus,
            offset=offset, loop_start=region[0], loop_end=region[1], at=now))
        events = events_from_rows(rows) + [PlayEvent(stimulus, now.timestamp(), offset, region)]
    return heard_and_needed(events, now.timestamp(), duration, test.spec["looping"], _min_play(test))


def submit_trial(engine: Engine, token: str, phase: str, position: int, ratings: Mapping[str, Any],
                 client: Mapping[str, Any] | None = None, now: datetime | None = None) -> Page:
    """Commit one trial page (ratings by opaque id; plays from the server's record) and move on, atomically.

    `phase` and `position` are the TrialPage's; training ratings are checked but not stored.
    """
    now = now or utcnow()
    client = limited_json(client, "the page's timing record", MAX_CLIENT_BYTES)
    if not isinstance(ratings, Mapping):
        raise FlowError("ratings are a mapping from stimulus id to a score")
    with write_transaction(engine) as connection:
        participant, test, session = _locked(connection, token)
        trial, reference, ids = _trial_page(session, phase, position)
        duration, looping = _duration(connection, trial["item"]), test.spec["looping"]
        rows = _plays(connection, session.id, phase, position)
        events = events_from_rows(rows)
        played = heard_and_needed(events, now.timestamp(), duration, looping, _min_play(test))
        _check_trial(ids, ratings, played, phase == "test")
        by_id = {**dict(zip(ids, trial["sliders"])), reference: session.plan["reference"]}
        keys = _condition_keys(connection, test.id)
        log = _play_log(rows, spans(events, now.timestamp(), duration, looping), by_id, reference, keys, session)
        trial_id = connection.execute(insert(MushraTrial).values(
            session_id=session.id, phase=phase, position=position, item_id=trial["item"],
            slider_order={"conditions": list(trial["sliders"])}, play_log={"plays": log}, client=client,
            started_at=session.step_started_at, submitted_at=now)).inserted_primary_key[0]
        if phase == "test":
            _insert_ratings(connection, session.id, trial_id, trial["item"], by_id, ids, ratings)
        connection.execute(delete(MushraPlay).where(MushraPlay.session_id == session.id))
        _move_on(connection, test, session)
    return current_page(engine, token, now)


def submit_questionnaire(engine: Engine, token: str, answers: Mapping[str, Any]) -> Page:
    """Store the answers (checked per question; AnswerError lists every problem) and finish."""
    if not isinstance(answers, Mapping):
        raise FlowError("answers are a mapping from question id to an answer")
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


def stimulus_audio(engine: Engine, grant: str, now: datetime | None = None) -> bytes:
    """The audio behind a grant of the page the listener stands on, as `stimuli.deliver` serves it:
    24-bit WAV, one size per item, dithered afresh per session and stimulus id."""
    parsed = read_grant(grant)
    if parsed is None:
        raise AccessError("this audio link is not valid; reload the page")
    code, opaque, _ = parsed
    with engine.connect() as connection:
        row = connection.execute(
            select(MushraSession, MushraTest.status, MushraTest.stimulus_dir, MushraTest.sample_rate)
            .join(MushraParticipant, MushraParticipant.id == MushraSession.participant_id)
            .join(MushraTest, MushraTest.id == MushraSession.test_id).where(MushraParticipant.code == code)).first()
        if row is None or not grant_valid(row.secret, grant, (now or utcnow()).timestamp()):
            raise AccessError("this audio link is not valid or has expired; reload the page")
        if row.status != "open":
            raise FlowError("this test is closed; thank you")
        scope = _current_scope(row)
        found = None if scope is None else resolve_stimulus(row.secret, row.plan, opaque, scope)
        if found is None:
            raise FlowError("this audio belongs to another page; reload the page")
        path = connection.execute(select(MushraStimulus.path).where(
            MushraStimulus.item_id == found[0], MushraStimulus.condition_id == found[1])).scalar_one()
    samples = read_stimulus(Path(row.stimulus_dir) / path)
    return deliver(samples, row.sample_rate, dither_seed(row.secret, opaque))


def log_event(engine: Engine, token: str, kind: str, payload: Mapping[str, Any] | None = None) -> None:
    """Keep something the page reports (an error, a note) as event `client_<kind>`; limited in size and
    number per session (LimitError beyond)."""
    if not isinstance(kind, str) or not _EVENT_KIND.match(kind):
        raise FlowError("an event kind is 1 to 48 lower-case letters, digits, '_', '.' or '-'")
    payload = limited_json(payload, "the event", MAX_EVENT_BYTES)
    with write_transaction(engine) as connection:
        participant, test = _participant(connection, token)
        session = _session(connection, participant.id)
        session_id = None if session is None else session.id
        logged = connection.execute(select(func.count()).select_from(MushraEvent).where(
            MushraEvent.session_id == session_id, MushraEvent.kind.like("client\\_%", escape="\\"))).scalar_one()
        if session_id is None or logged >= MAX_CLIENT_EVENTS:
            raise LimitError(f"this session has reported {MAX_CLIENT_EVENTS} events, the most it may")
        _event(connection, test.id, session_id, f"client_{kind}", payload)


# -- helpers -------------------------------------------------------------------------------


def _participant(connection: Connection, token: str) -> tuple[Any, Any]:
    """(participant: id and code, test row) behind an access token, in one query: it runs on every request."""
    test = connection.execute(
        select(MushraTest, MushraParticipant.id.label("participant_id"), MushraParticipant.code.label("participant_code"))
        .join(MushraParticipant, MushraParticipant.test_id == MushraTest.id)
        .where(MushraParticipant.token_hash == token_hash(str(token)))).first()
    if test is None:
        raise AccessError("this link is not valid; check that it was copied completely")
    if test.status != "open":
        raise FlowError("this test has not started yet" if test.status == "draft" else "this test is closed; thank you")
    return SimpleNamespace(id=test.participant_id, code=test.participant_code), test


def _session(connection: Connection, participant_id: int, lock: bool = False) -> Any:
    query = select(MushraSession).where(MushraSession.participant_id == participant_id)
    return connection.execute(query.with_for_update() if lock else query).first()


def _locked(connection: Connection, token: str) -> tuple[Any, Any, Any]:
    participant, test = _participant(connection, token)
    session = _session(connection, participant.id, lock=True)  # PostgreSQL: serialises racing steps
    if session is None:
        raise FlowError("this session has not started yet; open the link again")
    return participant, test, session


def _trial_page(session: Any, phase: str, position: int) -> tuple[dict, str, list[str]]:
    """The plan's trial behind a page the listener says they are on; FlowError when they are not."""
    session_phase = {key: name for name, key in PLAN_KEYS.items()}.get(phase)
    if session_phase is None:
        raise FlowError(f"unknown trial phase {phase!r}")
    require(State(session.phase, session.position), session_phase, position)
    trial = session.plan[phase][position]
    reference, ids = trial_ids(session.secret, phase, position, trial["sliders"])
    return trial, reference, ids


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


def _page(connection: Connection, test: Any, session: Any, participant: Any, now: datetime) -> Page:
    durations = dict(connection.execute(select(MushraItem.id, MushraItem.duration)
                                        .where(MushraItem.test_id == test.id)).all())
    heard = None
    key = PLAN_KEYS.get(session.phase)
    if key is not None:
        events = events_from_rows(_plays(connection, session.id, key, session.position))
        heard = heard_and_needed(events, now.timestamp(), durations[session.plan[key][session.position]["item"]],
                                 test.spec["looping"], _min_play(test))
    expires = (int(now.timestamp()) // 3600 + GRANT_HOURS) * 3600
    return build_page(test.spec, session, participant.code, durations, expires, heard)


def _plays(connection: Connection, session_id: int, phase: str, position: int) -> list[Any]:
    return connection.execute(select(MushraPlay).where(
        MushraPlay.session_id == session_id, MushraPlay.phase == phase, MushraPlay.position == position)
        .order_by(MushraPlay.id)).all()


def _duration(connection: Connection, item_id: int) -> float:
    return connection.execute(select(MushraItem.duration).where(MushraItem.id == item_id)).scalar_one()


def _min_play(test: Any) -> float:
    return test.spec.get("min_play_seconds", DEFAULT_MIN_PLAY_S)  # tests made before the option: the default


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


def _check_trial(ids: list[str], ratings: Mapping[str, Any], played: dict, rated: bool) -> None:
    if unknown := [key for key in ratings if key not in ids]:
        raise FlowError(f"{len(unknown)} stimulus id(s) do not belong to this page; reload the page")
    if problems := blockers(ids, played, ratings, require_ratings=rated):
        raise FlowError("not finished: " + ", ".join(f"sample {index + 1} {reason}" for index, reason in problems))


def _condition_keys(connection: Connection, test_id: int) -> dict[int, str]:
    return dict(connection.execute(select(MushraCondition.id, MushraCondition.key)
                                   .where(MushraCondition.test_id == test_id)).all())


def _play_log(rows: list, seconds: list[float], by_id: dict, reference: str, keys: dict, session: Any) -> list[dict]:
    """The trial's play log in server time (s after the page began); conditions named, never opaque ids."""
    started = session.step_started_at.timestamp()
    return [{"condition": None if row.stimulus is None else keys[by_id[row.stimulus]],
             "reference_button": row.stimulus == reference, "at": round(row.at.timestamp() - started, 3),
             "seconds": round(span, 3), "offset": row.offset, "loop": [row.loop_start, row.loop_end]}
            for row, span in zip(rows, seconds)]


def _insert_ratings(connection, session_id, trial_id, item_id, by_id, ids, ratings) -> None:
    rows = [{"trial_id": trial_id, "session_id": session_id, "item_id": item_id, "condition_id": by_id[stimulus],
             "slider": slider, "score": float(ratings[stimulus])} for slider, stimulus in enumerate(ids)]
    connection.execute(insert(MushraRating), rows)


def _current_scope(session: Any) -> tuple[str, int] | None:
    if session.phase == "level_check":
        return ("level", 0)
    key = PLAN_KEYS.get(session.phase)
    return None if key is None else (key, session.position)


def _event(connection: Connection, test_id: int, session_id: int | None, kind: str, payload: Any) -> None:
    connection.execute(insert(MushraEvent).values(test_id=test_id, session_id=session_id, kind=kind,
                                                  payload=payload, created_at=utcnow()))
