"""MUSHRA over HTTP: pending plays time-stamped by the server, admin sessions and failed sign-ins.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen copies of the model types: a revision must not change when models_mushra.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
TABLES = ("mushra_plays", "mushra_admin_sessions", "mushra_signin_failures")


def _id(table: str) -> list:
    return [sa.Column("id", ID, primary_key=True, autoincrement=True), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")]


def upgrade() -> None:
    table = "mushra_plays"
    key = sa.ForeignKey("mushra_sessions.id", ondelete="CASCADE", name="fk_mushra_plays_session_id_mushra_sessions")
    op.create_table(
        table, *_id(table), sa.Column("session_id", ID, key, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stimulus", sa.String(64)),
        sa.Column("offset", sa.Float(), nullable=False),
        sa.Column("loop_start", sa.Float(), nullable=False),
        sa.Column("loop_end", sa.Float(), nullable=False),
        sa.Column("at", TIME, nullable=False),
    )
    op.create_index("ix_mushra_plays_session_id_phase_position", table, ["session_id", "phase", "position"])
    table = "mushra_admin_sessions"
    op.create_table(
        table, *_id(table),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME),
        sa.UniqueConstraint("token_hash", name="uq_mushra_admin_sessions_token_hash"),
    )
    table = "mushra_signin_failures"
    op.create_table(
        table, *_id(table),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", TIME, nullable=False),
    )
    op.create_index("ix_mushra_signin_failures_client_at", table, ["client", "at"])
    op.create_index("ix_mushra_signin_failures_account_at", table, ["account", "at"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
