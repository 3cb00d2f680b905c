"""The listener's side, on the database: enter with a token, take each step, report plays, fetch audio.

All state lives in the database (mushra_sessions, and mushra_plays for the page in progress), so
a listener who reloads or closes the tab and opens the link again lands exactly where they stood,
with the plays they had made. Every step is one write transaction that first locks the session
row and checks that the step fits the stored state (a stale tab or a double click gets a
FlowError, never a second copy of a trial); a trial's responses and play log are committed together
with the move to the next page, or not at all. What was heard is decided from the server's own
time stamps (playlog.py); the page's claims are kept as client notes only. The test's type
(evalkit.listening.types) decides what a page asks and which typed responses its answer becomes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..store.db import write_transaction
from ..store.models import utcnow
from ..store.models_mushra import (
    MushraCondition,
    MushraEvent,
    MushraParticipant,
    MushraPlay,
    MushraResponse,
    MushraSession,
    MushraStimulus,
    MushraTest,
    MushraTrial,
)
from . import environment, p808
from .crowd import record_rejection
from .flow import ENDS, PLAN_KEYS, AccessError, FlowError, State, advance, blockers, require
from .pages import Page
from .playlog import (
    MAX_CLIENT_BYTES,
    MAX_CLIENT_EVENTS,
    MAX_EVENT_BYTES,
    MAX_PLAY_EVENTS,
    LimitError,
    PlayEvent,
    check_loop,
    check_offset,
    events_from_rows,
    heard_and_needed,
    limited_json,
    spans,
)
from .sessions import (
    GRANT_HOURS,
    create_session,
    event,
    locked,
    looping,
    min_play,
    page,
    page_duration,
    participant,
    plays,
    session,
    trial_page,
)
from .spec_parts import Question, qualifies
from .stimuli import deliver, read_stimulus
from .tokens import completion_code, dither_seed, grant_valid, read_grant, resolve_stimulus
from .types import get_type

__all__ = [
    "AnswerError",
    "enter",
    "current_page",
    "accept_consent",
    "submit_qualification",
    "finish_instructions",
    "confirm_level",
    "record_play",
    "submit_trial",
    "submit_questionnaire",
    "stimulus_audio",
    "log_event",
    "GRANT_HOURS",
]

_RETRIES = 5
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
                who, test = participant(connection, token)
                row = session(connection, who.id)
                if row is None:
                    create_session(connection, who, test)
                else:
                    event(connection, test.id, row.id, "resume", {"phase": row.phase, "position": row.position})
                    _stop_open_play(connection, row.id, now or utcnow())
            return current_page(engine, token, now)
        except IntegrityError:
            if attempt == _RETRIES - 1:  # two first visits raced for one ordinal, retry with the next
                raise
    raise AssertionError("unreachable")


def current_page(engine: Engine, token: str, now: datetime | None = None) -> Page:
    """The page to show now (read only); `enter` must have been called once."""
    with engine.connect() as connection:
        who, test = participant(connection, token)
        row = session(connection, who.id)
        if row is None:
            raise FlowError("this session has not started yet; open the link again")
        return page(connection, test, row, who, now or utcnow())


def accept_consent(engine: Engine, token: str) -> Page:
    return _simple_step(engine, token, "consent", "consent", {})


def finish_instructions(engine: Engine, token: str) -> Page:
    return _simple_step(engine, token, "instructions", "instructions_read", {})


def confirm_level(engine: Engine, token: str, settings: Mapping[str, Any] | None = None) -> Page:
    """The listener set a comfortable level on the level-check signal; `settings` is logged."""
    return _simple_step(
        engine,
        token,
        "level_check",
        "level_confirmed",
        limited_json(settings or {}, "the level settings", MAX_CLIENT_BYTES),
    )


def submit_qualification(engine: Engine, token: str, answers: Mapping[str, Any]) -> Page:
    """Store the qualification answers (AnswerError lists what cannot be stored); a listener whose answers do not
    qualify is screened out, with the reason recorded."""
    with write_transaction(engine) as connection:
        who, test, row = locked(connection, token)
        require(State(row.phase, row.position), "qualification")
        questions = test.spec.get("qualification") or []
        stored = _answers(questions, answers)
        failed = [q["id"] for q in questions if not qualifies(q, stored[q["id"]])]
        checks = {**(row.checks or {}), "qualification": {"answers": stored, "passed": not failed, "failed": failed}}
        if failed:
            _screen_out(
                connection,
                test,
                row,
                checks,
                "qualification",
                f"qualification answers that do not qualify: {', '.join(failed)}",
            )
        else:
            _move_on(connection, test, row, checks)
    return current_page(engine, token)


def record_play(
    engine: Engine,
    token: str,
    phase: str,
    position: int,
    stimulus: str | None,
    offset: float = 0.0,
    loop: Any = None,
    now: datetime | None = None,
) -> dict[str, tuple[float, float]]:
    """Stamp one play (`stimulus`, from `offset` s, with loop region `loop`) or stop (None) of the
    page `phase`/`position` with the server's clock; returns the page's (heard, needed) per id."""
    now = now or utcnow()
    with write_transaction(engine) as connection:
        who, test, row = locked(connection, token)
        trial, reference, ids = trial_page(test, row, phase, position)
        if stimulus is not None and stimulus not in ids and (reference is None or stimulus != reference):
            raise FlowError("this stimulus does not belong to this page; reload the page")
        duration = page_duration(connection, trial)
        offset, region = check_offset(offset, duration), check_loop(loop, duration) or (0.0, duration)
        rows = plays(connection, row.id, phase, position)
        if len(rows) >= MAX_PLAY_EVENTS:
            raise LimitError(f"{MAX_PLAY_EVENTS} plays on one page is the limit; answer and press Next")
        connection.execute(
            insert(MushraPlay).values(
                session_id=row.id,
                phase=phase,
                position=position,
                stimulus=stimulus,
                offset=offset,
                loop_start=region[0],
                loop_end=region[1],
                at=now,
            )
        )
        events = events_from_rows(rows) + [PlayEvent(stimulus, now.timestamp(), offset, region)]
    return heard_and_needed(events, now.timestamp(), duration, looping(test, phase), min_play(test, phase, duration))


def submit_trial(
    engine: Engine,
    token: str,
    phase: str,
    position: int,
    response: Mapping[str, Any],
    client: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Page:
    """Commit one page (its answer by opaque ids; plays from the server's record) and move on, atomically.

    `phase` and `position` are the TrialPage's. `response` maps stimulus ids to scores (MUSHRA,
    BS.1116) or holds {"choice": value} (one answer per page); training answers are checked, not stored.
    """
    now = now or utcnow()
    client = limited_json(client, "the page's timing record", MAX_CLIENT_BYTES)
    if not isinstance(response, Mapping):
        raise FlowError('an answer is a mapping: stimulus id -> score, or {"choice": ...}')
    with write_transaction(engine) as connection:
        who, test, row = locked(connection, token)
        trial, reference, ids = trial_page(test, row, phase, position)
        duration = page_duration(connection, trial)
        rows = plays(connection, row.id, phase, position)
        events = events_from_rows(rows)
        played = heard_and_needed(
            events, now.timestamp(), duration, looping(test, phase), min_play(test, phase, duration)
        )
        kind = get_type(test.test_type)
        _check_answer(kind, test, trial, ids, response, played, phase)
        log = _play_log(
            connection,
            test,
            row,
            rows,
            spans(events, now.timestamp(), duration, looping(test, phase)),
            trial,
            ids,
            reference,
        )
        checks = dict(row.checks or {})
        if phase == "environment":
            answer = environment.answer_of(trial, response)
            checks["environment"] = [
                *checks.get("environment", []),
                {
                    "check": trial["check"],
                    "index": trial["index"],
                    "position": position,
                    "answer": answer,
                    "right": trial["answer"],
                    "ok": answer == trial["answer"],
                    "plays": log,
                },
            ]
        else:
            trial_id = connection.execute(
                insert(MushraTrial).values(
                    session_id=row.id,
                    phase=phase,
                    position=position,
                    item_id=trial.get("item"),
                    layout={k: v for k, v in trial.items() if k != "item"},
                    play_log={"plays": log},
                    client=client,
                    started_at=row.step_started_at,
                    submitted_at=now,
                )
            ).inserted_primary_key[0]
            if phase == "test":
                _store_answer(connection, kind, row, trial_id, trial, ids, response, position, checks)
        connection.execute(delete(MushraPlay).where(MushraPlay.session_id == row.id))
        _move_on(connection, test, row, checks)
    return current_page(engine, token, now)


def submit_questionnaire(engine: Engine, token: str, answers: Mapping[str, Any]) -> Page:
    """Store the answers (checked per question; AnswerError lists every problem) and finish."""
    with write_transaction(engine) as connection:
        who, test, row = locked(connection, token)
        require(State(row.phase, row.position), "questionnaire")
        stored = _answers(test.spec["questionnaire"], answers)
        connection.execute(update(MushraSession).where(MushraSession.id == row.id).values(answers=stored))
        _move_on(connection, test, row)
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
            .join(MushraTest, MushraTest.id == MushraSession.test_id)
            .where(MushraParticipant.code == code)
        ).first()
        if row is None or not grant_valid(row.secret, grant, (now or utcnow()).timestamp()):
            raise AccessError("this audio link is not valid or has expired; reload the page")
        if row.status != "open":
            raise FlowError("this test is closed; thank you")
        scope = _current_scope(row)
        found = None if scope is None else resolve_stimulus(row.secret, row.plan, opaque, scope)
        if found is None:
            raise FlowError("this audio belongs to another page; reload the page")
        path = (
            found[1]
            if found[0] is None
            else connection.execute(
                select(MushraStimulus.path).where(
                    MushraStimulus.item_id == found[0], MushraStimulus.condition_id == found[1]
                )
            ).scalar_one()
        )
    samples = read_stimulus(Path(row.stimulus_dir) / path)
    return deliver(samples, row.sample_rate, dither_seed(row.secret, opaque))


def log_event(engine: Engine, token: str, kind: str, payload: Mapping[str, Any] | None = None) -> None:
    """Keep something the page reports (an error, a note) as event `client_<kind>`; limited in size and
    number per session (LimitError beyond)."""
    if not isinstance(kind, str) or not _EVENT_KIND.match(kind):
        raise FlowError("an event kind is 1 to 48 lower-case letters, digits, '_', '.' or '-'")
    payload = limited_json(payload, "the event", MAX_EVENT_BYTES)
    with write_transaction(engine) as connection:
        who, test = participant(connection, token)
        row = session(connection, who.id)
        session_id = None if row is None else row.id
        logged = connection.execute(
            select(func.count())
            .select_from(MushraEvent)
            .where(MushraEvent.session_id == session_id, MushraEvent.kind.like("client\\_%", escape="\\"))
        ).scalar_one()
        if session_id is None or logged >= MAX_CLIENT_EVENTS:
            raise LimitError(f"this session has reported {MAX_CLIENT_EVENTS} events, the most it may")
        event(connection, test.id, session_id, f"client_{kind}", payload)


# -- helpers -------------------------------------------------------------------------------


def _stop_open_play(connection: Connection, session_id: int, now: datetime) -> None:
    """A page loaded anew plays nothing: a play still open on the page left behind (the tab closed or reloaded
    mid-play) ends now, or after one pass of its loop region if that is sooner (when the old page fell silent is not
    known; one pass is what a test without looping counts too), instead of counting until a day later perhaps."""
    last = connection.execute(
        select(MushraPlay).where(MushraPlay.session_id == session_id).order_by(MushraPlay.id.desc()).limit(1)
    ).first()
    if last is not None and last.stimulus is not None:
        connection.execute(
            insert(MushraPlay).values(
                session_id=session_id,
                phase=last.phase,
                position=last.position,
                stimulus=None,
                offset=0.0,
                loop_start=last.loop_start,
                loop_end=last.loop_end,
                at=max(last.at, min(now, last.at + timedelta(seconds=last.loop_end - last.loop_start))),
            )
        )


def _simple_step(engine: Engine, token: str, phase: str, kind: str, payload: dict) -> Page:
    with write_transaction(engine) as connection:
        who, test, row = locked(connection, token)
        require(State(row.phase, row.position), phase)
        event(connection, test.id, row.id, kind, payload)
        _move_on(connection, test, row)
    return current_page(engine, token)


def _answers(questions: list[dict], answers: Any) -> dict[str, Any]:
    """Every question's stored answer; AnswerError naming each one that cannot be stored."""
    if not isinstance(answers, Mapping):
        raise FlowError("answers are a mapping from question id to an answer")
    stored, problems = {}, {}
    for question in (
        Question(**{k: v for k, v in q.items() if k != "accept"} | {"choices": tuple(q["choices"])}) for q in questions
    ):
        try:
            stored[question.id] = question.answer(answers.get(question.id))
        except ValueError as err:
            problems[question.id] = str(err)
    if problems:
        raise AnswerError(problems)
    return stored


def _enabled(test: Any) -> set[str]:
    return {phase for phase in ("qualification", "questionnaire") if test.spec.get(phase)}


def _move_on(connection: Connection, test: Any, row: Any, checks: dict | None = None) -> None:
    """The next step; leaving the environment checks failed screens the listener out; finishing records the
    session's P.808 rejections (gold and trapping answers, constant ratings)."""
    state = advance(State(row.phase, row.position), row.plan, _enabled(test))
    if row.phase == "environment" and state.phase != "environment":
        passed, reasons = environment.score(test.spec.get("environment") or [], (checks or {}).get("environment", []))
        checks = {**checks, "environment_passed": passed}
        if not passed:
            return _screen_out(connection, test, row, checks, "environment", "; ".join(reasons))
    now = utcnow()
    values = {"phase": state.phase, "position": state.position, "step_started_at": now, "updated_at": now}
    if checks is not None:
        values["checks"] = checks
    if state.phase == "done":
        values.update(completion_code=completion_code(), completed_at=now)
        event(connection, test.id, row.id, "complete", None)
        scores = (
            connection.execute(
                select(MushraResponse.score).where(MushraResponse.session_id == row.id, MushraResponse.kind == "score")
            )
            .scalars()
            .all()
        )
        for rule, reason in p808.session_rejections(test.spec.get("options") or {}, checks or row.checks or {}, scores):
            record_rejection(connection, test.id, row.id, rule, reason)
    connection.execute(update(MushraSession).where(MushraSession.id == row.id).values(values))


def _screen_out(connection: Connection, test: Any, row: Any, checks: dict, rule: str, reason: str) -> None:
    """End the session early: a code for the panel (screened out), the rule and reason recorded."""
    now = utcnow()
    connection.execute(
        update(MushraSession)
        .where(MushraSession.id == row.id)
        .values(
            phase="screened_out",
            position=0,
            checks=checks,
            completion_code=completion_code(),
            step_started_at=now,
            updated_at=now,
        )
    )
    event(connection, test.id, row.id, "screened_out", {"rule": rule})
    record_rejection(connection, test.id, row.id, rule, reason)


def _check_answer(
    kind, test: Any, trial: dict, ids: list[str], response: Mapping[str, Any], played: dict, phase: str
) -> None:
    by_stimulus = phase != "environment" and kind.view != "pick"  # a score per stimulus id, or {"choice"}
    if unknown := [key for key in response if (key not in ids if by_stimulus else key != "choice")]:
        raise FlowError(f"{len(unknown)} answer key(s) do not belong to this page; reload the page")
    if phase == "environment":
        labels, missing = ["1"], [] if environment.answer_of(trial, response) is not None else ["choose an answer"]
    else:
        labels = kind.prompt(trial, ids, test.spec.get("options") or {})["labels"]
        # Training answers are not kept, but whatever a page sends must still fit the page's layout.
        missing = kind.missing(trial, ids, response) if phase == "test" or (response and not by_stimulus) else []
        if by_stimulus and kind.scale is not None and any(not kind.scale.valid(v) for v in response.values()):
            missing.append(f"scores are numbers from {kind.scale.low:g} to {kind.scale.high:g}")
    problems = [
        f"sample {labels[index]} {reason}" for index, reason in blockers(ids, played, {}, require_ratings=False)
    ]
    if problems + missing:
        raise FlowError("not finished: " + ", ".join(problems + missing))


def _store_answer(
    connection: Connection,
    kind,
    row: Any,
    trial_id: int,
    trial: dict,
    ids: list[str],
    response: Mapping[str, Any],
    position: int,
    checks: dict,
) -> None:
    """A test page's typed responses; a gold or trapping page's answer goes to the session's checks instead."""
    if trial.get("kind") in p808.CHECK_KINDS:
        answer = kind.check_answer(trial, ids, response)
        checks[trial["kind"]] = [
            *checks.get(trial["kind"], []),
            {"position": position, "answer": answer, "accept": trial["accept"], "ok": answer in trial["accept"]},
        ]
        return
    rows = [
        {**r, "trial_id": trial_id, "session_id": row.id, "item_id": trial["item"]}
        for r in kind.responses(trial, ids, response)
    ]
    connection.execute(insert(MushraResponse), rows)


def _play_log(
    connection: Connection,
    test: Any,
    row: Any,
    rows: list,
    seconds: list[float],
    trial: dict,
    ids: list[str],
    reference: str | None,
) -> list[dict]:
    """The page's play log in server time (s after the page began); conditions named, never opaque ids."""
    keys = dict(
        connection.execute(
            select(MushraCondition.id, MushraCondition.key).where(MushraCondition.test_id == test.id)
        ).all()
    )
    slots = {stimulus: slot for slot, stimulus in enumerate(ids)}
    started = row.step_started_at.timestamp()

    def name(stimulus: str | None) -> str | None:
        if stimulus is None:
            return None
        condition = row.plan["reference"] if stimulus == reference else trial["conditions"][slots[stimulus]]
        return keys.get(condition, str(condition))

    return [
        {
            "condition": name(play.stimulus),
            "slot": slots.get(play.stimulus),
            "reference_button": play.stimulus is not None and play.stimulus == reference,
            "at": round(play.at.timestamp() - started, 3),
            "seconds": round(span, 3),
            "offset": play.offset,
            "loop": [play.loop_start, play.loop_end],
        }
        for play, span in zip(rows, seconds)
    ]


def _current_scope(row: Any) -> tuple[str, int] | None:
    if row.phase == "level_check":
        return ("level", 0)
    key = PLAN_KEYS.get(row.phase)
    return None if key is None or row.phase in ENDS else (key, row.position)
