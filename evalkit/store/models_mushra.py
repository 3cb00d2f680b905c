"""Tables of listening tests of every type: tests, items, conditions, stimuli, participants, sessions,
trials, responses (one row per score or choice), rejections, events, pending plays, and the admin's
sessions and failed sign-ins. Every table is prefixed `mushra_` (the first test type; the prefix
stayed so that existing databases keep their tables) so that the generic names (sessions, events,
items) stay free for other parts of evalkit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..listening.flow import PHASES  # the listener's state machine owns its phases; the table checks them
from .models import Base, Id, one_of, utcnow

__all__ = [
    "MushraTest",
    "MushraItem",
    "MushraCondition",
    "MushraStimulus",
    "MushraParticipant",
    "MushraSession",
    "MushraTrial",
    "MushraResponse",
    "MushraRejection",
    "MushraEvent",
    "MushraPlay",
    "MushraAdminSession",
    "MushraSigninFailure",
    "TEST_STATUSES",
    "CONDITION_KINDS",
    "PHASES",
    "TRIAL_PHASES",
    "PARTICIPANT_SOURCES",
    "TEST_ORIGINS",
    "RESPONSE_KINDS",
]

TEST_STATUSES = ("draft", "open", "closed")
CONDITION_KINDS = ("reference", "anchor", "codec", "file")
TRIAL_PHASES = ("training", "test")
PARTICIPANT_SOURCES = ("invite", "open", "import")
TEST_ORIGINS = ("evalkit", "webmushra", "beaqlejs", "long")  # evalkit ran it, or its ratings were imported
RESPONSE_KINDS = ("score", "choice")  # a number on a named scale, or a choice between stimuli


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


class MushraTest(Base):
    """One listening test of a registered type, created from a validated YAML definition."""

    __tablename__ = "mushra_tests"
    __table_args__ = (one_of("status", TEST_STATUSES), one_of("origin", TEST_ORIGINS))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    spec: Mapped[dict[str, Any]]  # the definition as loaded (paths resolved)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)  # drives the balanced orders of all sessions
    sample_rate: Mapped[int] = mapped_column(Integer)
    stimulus_dir: Mapped[str] = mapped_column(Text)
    open_token: Mapped[str | None] = mapped_column(String(64), unique=True)  # public by design
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    launched_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    origin: Mapped[str] = mapped_column(String(16), default="evalkit", server_default="evalkit")
    # Post-screening as declared: {"rule", "reference", "anchors", "mid_anchor"}; None: the BS.1534-3 defaults.
    screening: Mapped[dict[str, Any] | None]
    test_type: Mapped[str] = mapped_column(String(32), default="mushra", server_default="mushra")  # types registry


class MushraItem(Base):
    """One excerpt of the test (a reference signal), in definition order."""

    __tablename__ = "mushra_items"
    __table_args__ = (UniqueConstraint("test_id", "key"), UniqueConstraint("test_id", "position"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    key: Mapped[str] = mapped_column(String(500))  # the item id of the definition
    position: Mapped[int] = mapped_column(Integer)
    training: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(Text)  # the reference file it was cut from
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    duration: Mapped[float | None] = mapped_column(Float)  # seconds, after cutting; None when imported


class MushraCondition(Base):
    """One signal rated on every trial: hidden reference, anchor, codec card or pre-rendered files."""

    __tablename__ = "mushra_conditions"
    __table_args__ = (UniqueConstraint("test_id", "key"), one_of("kind", CONDITION_KINDS))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    key: Mapped[str] = mapped_column(String(200))  # e.g. reference, anchor-lp35, opus-6k
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    card: Mapped[str | None] = mapped_column(String(200))  # the codec name its objective results carry
    card_hash: Mapped[str | None] = mapped_column(String(128))
    codec_version: Mapped[str | None] = mapped_column(String(64))


class MushraStimulus(Base):
    """One prepared, levelled, lossless file: an item through a condition (server-side only)."""

    __tablename__ = "mushra_stimuli"
    __table_args__ = (UniqueConstraint("item_id", "condition_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    item_id: Mapped[int] = mapped_column(Id, _fk("mushra_items.id"))
    condition_id: Mapped[int] = mapped_column(Id, _fk("mushra_conditions.id"))
    path: Mapped[str] = mapped_column(Text)  # relative to the test's stimulus_dir
    sha256: Mapped[str] = mapped_column(String(64))
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    loudness: Mapped[float] = mapped_column(Float)  # LUFS as delivered
    gain_db: Mapped[float] = mapped_column(Float)  # levelling gain applied
    peak_dbfs: Mapped[float] = mapped_column(Float)
    bitrate: Mapped[float | None] = mapped_column(Float)  # measured payload bit/s (codecs only)


class MushraParticipant(Base):
    """A listener: invited (token made by an admin) or arrived through the open link (from a panel, with its id)."""

    __tablename__ = "mushra_participants"
    # A unique index, not a constraint: SQLite adds an index without copying the table.
    __table_args__ = (
        one_of("source", PARTICIPANT_SOURCES),
        Index(None, "test_id", "panel", "panel_id", unique=True),
        Index(None, "panel", "panel_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)  # the public participant id
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the access token
    source: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    panel: Mapped[str | None] = mapped_column(String(32))  # e.g. prolific, mturk: where the listener came from
    panel_id: Mapped[str | None] = mapped_column(String(64))  # the panel's worker id (Prolific PID, MTurk workerId)
    panel_info: Mapped[dict[str, Any] | None]  # the panel's other URL parameters (study, session, assignment)


class MushraSession(Base):
    """Where a participant stands; everything needed to resume lives in this row."""

    __tablename__ = "mushra_sessions"
    __table_args__ = (UniqueConstraint("test_id", "ordinal"), one_of("phase", PHASES))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    participant_id: Mapped[int] = mapped_column(Id, _fk("mushra_participants.id"), unique=True)
    ordinal: Mapped[int] = mapped_column(Integer)  # arrival order: picks the Latin-square row
    seed: Mapped[int] = mapped_column(BigInteger)
    secret: Mapped[str] = mapped_column(String(64))  # HMAC key of the opaque stimulus ids
    plan: Mapped[dict[str, Any]]  # training and test trials: item and slider order
    phase: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)  # trial index within the phase
    answers: Mapped[dict[str, Any] | None]
    completion_code: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    step_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    checks: Mapped[dict[str, Any] | None]  # qualification answers, environment check, gold and trapping answers
    deadline: Mapped[datetime | None]  # the session's time limit, when the test sets one


class MushraTrial(Base):
    """One committed trial page: what was shown (its layout), the play log and the timing."""

    __tablename__ = "mushra_trials"
    __table_args__ = (UniqueConstraint("session_id", "phase", "position"), one_of("phase", TRIAL_PHASES))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(Id, _fk("mushra_sessions.id"))
    phase: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(Id, _fk("mushra_items.id"))  # None: a trapping clip
    layout: Mapped[dict[str, Any]]  # {"conditions": [condition ids in slot order], "kind"?: gold | trap, ...}
    play_log: Mapped[dict[str, Any]]  # {"plays": [...]} with condition keys, never opaque ids
    client: Mapped[dict[str, Any] | None]  # timing and anything else the page reported
    started_at: Mapped[datetime]
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)


class MushraResponse(Base):
    """One response on one trial: a score on a named scale, or a choice (training responses are never stored).

    `condition_id` is the stimulus the response is about (a MUSHRA slider, an ACR clip, the processed
    clip of a CCR pair, X of an ABX trial, A of an AB pair); `other_condition_id` the one it was
    compared with, when there is one. A choice names the condition chosen (`chosen_condition_id`,
    None for "no preference") and its label on the page (`choice`).
    """

    __tablename__ = "mushra_responses"
    __table_args__ = (
        UniqueConstraint("trial_id", "slot"),
        one_of("kind", RESPONSE_KINDS),
        CheckConstraint(
            "(kind = 'score' AND score IS NOT NULL AND scale IS NOT NULL AND choice IS NULL) OR "
            "(kind = 'choice' AND choice IS NOT NULL AND score IS NULL)",
            name="typed",
        ),
        Index(None, "session_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(Id, _fk("mushra_trials.id"))
    session_id: Mapped[int] = mapped_column(Id, _fk("mushra_sessions.id"))
    item_id: Mapped[int] = mapped_column(Id, _fk("mushra_items.id"))
    condition_id: Mapped[int] = mapped_column(Id, _fk("mushra_conditions.id"))
    other_condition_id: Mapped[int | None] = mapped_column(Id, _fk("mushra_conditions.id"))
    slot: Mapped[int] = mapped_column(Integer)  # 0-based position on the page (a MUSHRA slider left to right)
    kind: Mapped[str] = mapped_column(String(8))
    scale: Mapped[str | None] = mapped_column(String(32))  # the type's scale: mushra, acr, dcr, ccr, bs1116, ...
    score: Mapped[float | None] = mapped_column(Float)
    choice: Mapped[str | None] = mapped_column(String(32))  # the label picked: a, b, none
    chosen_condition_id: Mapped[int | None] = mapped_column(Id, _fk("mushra_conditions.id"))


class MushraRejection(Base):
    """A session a rule rejects, with the rule and the reason; recorded whatever the panel pays."""

    __tablename__ = "mushra_rejections"
    __table_args__ = (UniqueConstraint("session_id", "rule"), Index(None, "test_id"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    session_id: Mapped[int] = mapped_column(Id, _fk("mushra_sessions.id"))
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MushraEvent(Base):
    """Anything else worth keeping: consent, level check, resume, page loads, admin actions."""

    __tablename__ = "mushra_events"
    __table_args__ = (Index(None, "session_id"), Index(None, "test_id", "kind"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(Id, _fk("mushra_tests.id"))
    session_id: Mapped[int | None] = mapped_column(Id, _fk("mushra_sessions.id"))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MushraPlay(Base):
    """One play event of a trial page not yet committed, time-stamped by the server when it arrived.

    `stimulus` is the page's opaque id (None: playback stopped). The rows of a page become the
    trial's play log, with condition names, when the page is committed, and are deleted then.
    """

    __tablename__ = "mushra_plays"
    __table_args__ = (Index(None, "session_id", "phase", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(Id, _fk("mushra_sessions.id"))
    phase: Mapped[str] = mapped_column(String(16))  # training | test
    position: Mapped[int] = mapped_column(Integer)
    stimulus: Mapped[str | None] = mapped_column(String(64))
    offset: Mapped[float] = mapped_column(Float)  # seconds into the stimulus where playback started
    loop_start: Mapped[float] = mapped_column(Float)
    loop_end: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MushraAdminSession(Base):
    """A signed-in admin browser: the cookie holds the token, the table its sha256 and expiry."""

    __tablename__ = "mushra_admin_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class MushraSigninFailure(Base):
    """One wrong password: counted per client and per account to lock sign-in for a while."""

    __tablename__ = "mushra_signin_failures"
    __table_args__ = (Index(None, "client", "at"), Index(None, "account", "at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
