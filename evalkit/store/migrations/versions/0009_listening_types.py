"""Listening tests of every type: typed responses, test types, panels, session checks and rejections.

Tests gain `test_type` (mushra for every existing test); `mushra_ratings` (a 0-100 score per row)
becomes `mushra_responses`, where a row is a score on a named scale or a choice, with the
condition it was compared with; existing ratings move over as MUSHRA scores. Participants gain
their panel and panel id, sessions their check answers and deadline, and new phases
(qualification, environment check, screened out); a trial's `slider_order` becomes its
`layout` and a trapping clip's trial has no item. Rejections are recorded with their reasons.
Session plans name a trial's stimuli `conditions` (was `sliders`) and the level check's
condition `level_condition`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copies of the model types: a revision must not change when models_mushra.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
OLD_PHASES = ("consent", "instructions", "level_check", "training", "trials", "questionnaire", "done")
PHASES = ("consent", "qualification", "instructions", "level_check", "environment", "training", "trials",
          "questionnaire", "done", "screened_out")
OLD_PHASE_CHECK = "ck_mushra_sessions_ck_mushra_sessions_phase"  # 0004 named its checks twice over
OLD_SCORE_CHECK = "ck_mushra_ratings_ck_mushra_ratings_score"
SESSION_CHILDREN = ("mushra_trials", "mushra_plays", "mushra_events")  # rows a copy of mushra_sessions would delete
TYPED = ("(kind = 'score' AND score IS NOT NULL AND scale IS NOT NULL AND choice IS NULL) OR "
         "(kind = 'choice' AND choice IS NOT NULL AND score IS NULL)")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ref(table: str, column: str, target: str, nullable: bool = False) -> sa.Column:
    key = sa.ForeignKey(f"{target}.id", ondelete="CASCADE", name=f"fk_{table}_{column}_{target}")
    return sa.Column(column, ID, key, nullable=nullable)


def _id(table: str) -> list:
    return [sa.Column("id", ID, primary_key=True, autoincrement=True), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")]


def upgrade() -> None:
    op.add_column("mushra_tests", sa.Column("test_type", sa.String(32), nullable=False, server_default="mushra"))
    op.add_column("mushra_participants", sa.Column("panel", sa.String(32)))
    op.add_column("mushra_participants", sa.Column("panel_id", sa.String(64)))
    op.add_column("mushra_participants", sa.Column("panel_info", JSON))
    op.create_index(op.f("ix_mushra_participants_test_id_panel_panel_id"), "mushra_participants",
                    ["test_id", "panel", "panel_id"], unique=True)
    op.create_index(op.f("ix_mushra_participants_panel_panel_id"), "mushra_participants", ["panel", "panel_id"])
    op.add_column("mushra_sessions", sa.Column("checks", JSON))
    op.add_column("mushra_sessions", sa.Column("deadline", TIME))
    with _keeping(SESSION_CHILDREN + ("mushra_ratings",)), op.batch_alter_table("mushra_sessions") as batch:
        batch.drop_constraint(op.f(OLD_PHASE_CHECK), type_="check")
        batch.create_check_constraint(op.f("ck_mushra_sessions_phase"), _one_of("phase", PHASES))
    op.execute("ALTER TABLE mushra_trials RENAME COLUMN slider_order TO layout")
    with _keeping(("mushra_ratings",)), op.batch_alter_table("mushra_trials") as batch:
        batch.alter_column("item_id", existing_type=ID, nullable=True)
    _create_responses()
    op.execute("INSERT INTO mushra_responses (trial_id, session_id, item_id, condition_id, slot, kind, scale, score) "
               "SELECT trial_id, session_id, item_id, condition_id, slider, 'score', 'mushra', score FROM mushra_ratings")
    op.drop_index("ix_mushra_ratings_session_id", table_name="mushra_ratings")
    op.drop_table("mushra_ratings")
    _create_rejections()
    _rewrite_plans(_new_plan)


@contextmanager
def _keeping(tables: tuple[str, ...]) -> Iterator[None]:
    """Keep the rows of `tables` (parents first) across a batch operation that copies their parent table.

    SQLite copies a table to change its constraints and drops the original, and with foreign keys
    on, dropping a table deletes its children's rows by cascade. store.db now migrates SQLite with
    them off, which makes this a no-op kept for safety; PostgreSQL alters in place.
    """
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    for table in tables:
        op.execute(f"CREATE TEMP TABLE keep_{table} AS SELECT * FROM {table}")
    yield
    for table in reversed(tables):
        op.execute(f"DELETE FROM {table}")
    for table in tables:
        op.execute(f"INSERT INTO {table} SELECT * FROM keep_{table}")
        op.execute(f"DROP TABLE keep_{table}")


def _create_responses() -> None:
    table = "mushra_responses"
    op.create_table(
        table, *_id(table), _ref(table, "trial_id", "mushra_trials"), _ref(table, "session_id", "mushra_sessions"),
        _ref(table, "item_id", "mushra_items"), _ref(table, "condition_id", "mushra_conditions"),
        _ref(table, "other_condition_id", "mushra_conditions", nullable=True),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("scale", sa.String(32)),
        sa.Column("score", sa.Float()),
        sa.Column("choice", sa.String(32)),
        _ref(table, "chosen_condition_id", "mushra_conditions", nullable=True),
        sa.UniqueConstraint("trial_id", "slot", name="uq_mushra_responses_trial_id_slot"),
        sa.CheckConstraint(_one_of("kind", ("score", "choice")), name=op.f("ck_mushra_responses_kind")),
        sa.CheckConstraint(TYPED, name=op.f("ck_mushra_responses_typed")),
    )
    op.create_index("ix_mushra_responses_session_id", table, ["session_id"])


def _create_rejections() -> None:
    table = "mushra_rejections"
    op.create_table(
        table, *_id(table), _ref(table, "test_id", "mushra_tests"), _ref(table, "session_id", "mushra_sessions"),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("session_id", "rule", name="uq_mushra_rejections_session_id_rule"),
    )
    op.create_index("ix_mushra_rejections_test_id", table, ["test_id"])


def _rewrite_plans(change) -> None:
    """Apply `change` to every session's plan (a JSON document), one row at a time."""
    sessions = sa.table("mushra_sessions", sa.column("id", ID), sa.column("plan", JSON))
    connection = op.get_bind()
    for row in connection.execute(sa.select(sessions.c.id, sessions.c.plan)).all():
        connection.execute(sessions.update().where(sessions.c.id == row.id).values(plan=change(dict(row.plan))))


def _new_plan(plan: dict) -> dict:
    for phase in ("training", "test"):
        plan[phase] = [{"item": t["item"], "conditions": t.get("sliders", t.get("conditions", []))}
                       for t in plan.get(phase, [])]
    plan.setdefault("level_condition", plan.get("reference"))
    return plan


def _old_plan(plan: dict) -> dict:
    for phase in ("training", "test"):
        plan[phase] = [{"item": t["item"], "sliders": t.get("conditions", [])} for t in plan.get(phase, [])]
    plan.pop("level_condition", None)
    return plan


def downgrade() -> None:
    op.execute("DELETE FROM mushra_tests WHERE test_type <> 'mushra'")  # other types cannot live in 0008
    table = "mushra_ratings"
    op.create_table(
        table, *_id(table), _ref(table, "trial_id", "mushra_trials"), _ref(table, "session_id", "mushra_sessions"),
        _ref(table, "item_id", "mushra_items"), _ref(table, "condition_id", "mushra_conditions"),
        sa.Column("slider", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.UniqueConstraint("trial_id", "condition_id", name="uq_mushra_ratings_trial_id_condition_id"),
        sa.CheckConstraint("score >= 0 AND score <= 100", name=op.f(OLD_SCORE_CHECK)),
    )
    op.create_index("ix_mushra_ratings_session_id", table, ["session_id"])
    op.execute("INSERT INTO mushra_ratings (trial_id, session_id, item_id, condition_id, slider, score) "
               "SELECT trial_id, session_id, item_id, condition_id, slot, score FROM mushra_responses "
               "WHERE kind = 'score' AND scale = 'mushra'")
    op.drop_table("mushra_rejections")
    op.drop_table("mushra_responses")
    _rewrite_plans(_old_plan)
    op.execute("DELETE FROM mushra_trials WHERE item_id IS NULL")
    with _keeping(("mushra_ratings",)), op.batch_alter_table("mushra_trials") as batch:
        batch.alter_column("item_id", existing_type=ID, nullable=False)
    op.execute("ALTER TABLE mushra_trials RENAME COLUMN layout TO slider_order")
    op.execute("UPDATE mushra_sessions SET phase = CASE phase WHEN 'qualification' THEN 'consent' "
               "WHEN 'environment' THEN 'level_check' WHEN 'screened_out' THEN 'done' ELSE phase END")
    with _keeping(SESSION_CHILDREN + ("mushra_ratings",)), op.batch_alter_table("mushra_sessions") as batch:
        batch.drop_constraint(op.f("ck_mushra_sessions_phase"), type_="check")
        batch.create_check_constraint(op.f(OLD_PHASE_CHECK), _one_of("phase", OLD_PHASES))
    for table, column in (("mushra_sessions", "deadline"), ("mushra_sessions", "checks")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # in place: SQLite 3.35+ and PostgreSQL
    op.drop_index(op.f("ix_mushra_participants_panel_panel_id"), table_name="mushra_participants")
    op.drop_index(op.f("ix_mushra_participants_test_id_panel_panel_id"), table_name="mushra_participants")
    for column in ("panel_info", "panel_id", "panel"):
        op.execute(f"ALTER TABLE mushra_participants DROP COLUMN {column}")
    op.execute("ALTER TABLE mushra_tests DROP COLUMN test_type")
