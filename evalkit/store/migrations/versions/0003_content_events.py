"""Content events: phoneme edits with times, confidence, local quality and the hallucination flag.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the model types: a revision must not change when models_content.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    run = sa.ForeignKey("runs.id", ondelete="CASCADE", name="fk_content_events_run_id_runs")
    op.create_table(
        "content_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(200), run, nullable=False),
        sa.Column("item_id", sa.String(500), nullable=False),
        sa.Column("codec", sa.String(200), nullable=False),
        sa.Column("codec_hash", sa.String(128), nullable=False),
        sa.Column("metric_version", sa.String(64), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=False),
        sa.Column("ref_phones", sa.String(500), nullable=False),
        sa.Column("deg_phones", sa.String(500), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("local_quality", sa.Float(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_content_events"),
        sa.UniqueConstraint("run_id", "item_id", "codec", "codec_hash", "metric_version", "start",
                            name="uq_content_events_key"),
        sa.CheckConstraint('"end" >= start', name="ck_content_events_span"),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_content_events_confidence"),
    )
    op.create_index("ix_content_events_run_id_codec_flagged", "content_events", ["run_id", "codec", "flagged"])


def downgrade() -> None:
    op.drop_table("content_events")
