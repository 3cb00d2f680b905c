"""MUSHRA listening tests: tests, items, conditions, stimuli, participants, sessions, trials,
ratings and events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the model types: a revision must not change when models_mushra.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
TABLES = ("mushra_tests", "mushra_items", "mushra_conditions", "mushra_stimuli", "mushra_participants",
          "mushra_sessions", "mushra_trials", "mushra_ratings", "mushra_events")


def _id(table: str) -> list:
    return [sa.Column("id", ID, primary_key=True, autoincrement=True), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")]


def _ref(table: str, column: str, target: str, nullable: bool = False) -> sa.Column:
    key = sa.ForeignKey(f"{target}.id", ondelete="CASCADE", name=f"fk_{table}_{column}_{target}")
    return sa.Column(column, ID, key, nullable=nullable)


def _one_of(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=f"ck_{table}_{column}")


def _create_tests() -> None:
    op.create_table(
        "mushra_tests", *_id("mushra_tests"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("spec_sha256", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("stimulus_dir", sa.Text(), nullable=False),
        sa.Column("open_token", sa.String(64)),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("launched_at", TIME),
        sa.Column("closed_at", TIME),
        sa.UniqueConstraint("name", name="uq_mushra_tests_name"),
        sa.UniqueConstraint("open_token", name="uq_mushra_tests_open_token"),
        _one_of("mushra_tests", "status", ("draft", "open", "closed")),
    )


def _create_items_and_conditions() -> None:
    op.create_table(
        "mushra_items", *_id("mushra_items"), _ref("mushra_items", "test_id", "mushra_tests"),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("training", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("start_s", sa.Float()),
        sa.Column("end_s", sa.Float()),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.UniqueConstraint("test_id", "key", name="uq_mushra_items_test_id_key"),
        sa.UniqueConstraint("test_id", "position", name="uq_mushra_items_test_id_position"),
    )
    op.create_table(
        "mushra_conditions", *_id("mushra_conditions"), _ref("mushra_conditions", "test_id", "mushra_tests"),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("card", sa.String(200)),
        sa.Column("card_hash", sa.String(128)),
        sa.Column("codec_version", sa.String(64)),
        sa.UniqueConstraint("test_id", "key", name="uq_mushra_conditions_test_id_key"),
        _one_of("mushra_conditions", "kind", ("reference", "anchor", "codec", "file")),
    )


def _create_stimuli() -> None:
    table = "mushra_stimuli"
    op.create_table(
        table, *_id(table), _ref(table, "test_id", "mushra_tests"), _ref(table, "item_id", "mushra_items"),
        _ref(table, "condition_id", "mushra_conditions"),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("loudness", sa.Float(), nullable=False),
        sa.Column("gain_db", sa.Float(), nullable=False),
        sa.Column("peak_dbfs", sa.Float(), nullable=False),
        sa.Column("bitrate", sa.Float()),
        sa.UniqueConstraint("item_id", "condition_id", name="uq_mushra_stimuli_item_id_condition_id"),
    )


def _create_participants_and_sessions() -> None:
    op.create_table(
        "mushra_participants", *_id("mushra_participants"), _ref("mushra_participants", "test_id", "mushra_tests"),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("code", name="uq_mushra_participants_code"),
        sa.UniqueConstraint("token_hash", name="uq_mushra_participants_token_hash"),
        _one_of("mushra_participants", "source", ("invite", "open")),
    )
    table = "mushra_sessions"
    phases = ("consent", "instructions", "level_check", "training", "trials", "questionnaire", "done")
    op.create_table(
        table, *_id(table), _ref(table, "test_id", "mushra_tests"),
        _ref(table, "participant_id", "mushra_participants"),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("plan", JSON, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("answers", JSON),
        sa.Column("completion_code", sa.String(32)),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("step_started_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("completed_at", TIME),
        sa.UniqueConstraint("participant_id", name="uq_mushra_sessions_participant_id"),
        sa.UniqueConstraint("test_id", "ordinal", name="uq_mushra_sessions_test_id_ordinal"),
        _one_of(table, "phase", phases),
    )


def _create_trials_and_ratings() -> None:
    table = "mushra_trials"
    op.create_table(
        table, *_id(table), _ref(table, "session_id", "mushra_sessions"),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _ref(table, "item_id", "mushra_items"),
        sa.Column("slider_order", JSON, nullable=False),
        sa.Column("play_log", JSON, nullable=False),
        sa.Column("client", JSON),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.UniqueConstraint("session_id", "phase", "position", name="uq_mushra_trials_session_id_phase_position"),
        _one_of(table, "phase", ("training", "test")),
    )
    table = "mushra_ratings"
    op.create_table(
        table, *_id(table), _ref(table, "trial_id", "mushra_trials"), _ref(table, "session_id", "mushra_sessions"),
        _ref(table, "item_id", "mushra_items"), _ref(table, "condition_id", "mushra_conditions"),
        sa.Column("slider", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.UniqueConstraint("trial_id", "condition_id", name="uq_mushra_ratings_trial_id_condition_id"),
        sa.CheckConstraint("score >= 0 AND score <= 100", name="ck_mushra_ratings_score"),
    )
    op.create_index("ix_mushra_ratings_session_id", table, ["session_id"])


def _create_events() -> None:
    table = "mushra_events"
    op.create_table(
        table, *_id(table), _ref(table, "test_id", "mushra_tests"),
        _ref(table, "session_id", "mushra_sessions", nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", JSON),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_mushra_events_session_id", table, ["session_id"])
    op.create_index("ix_mushra_events_test_id_kind", table, ["test_id", "kind"])


def upgrade() -> None:
    _create_tests()
    _create_items_and_conditions()
    _create_stimuli()
    _create_participants_and_sessions()
    _create_trials_and_ratings()
    _create_events()


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
