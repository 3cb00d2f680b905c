"""Initial schema: runs, roundtrips and long-form results.

Revision ID: 0001
Revises:
Create Date: 2025-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the model types: a revision must not change when models.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def _codec_item_columns(table: str) -> list[sa.Column]:
    run = sa.ForeignKey("runs.id", ondelete="CASCADE", name=f"fk_{table}_run_id_runs")
    return [
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(200), run, nullable=False),
        sa.Column("item_id", sa.String(500), nullable=False),
        sa.Column("codec", sa.String(200), nullable=False),
        sa.Column("codec_hash", sa.String(128), nullable=False),
    ]


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("experiment", JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("evalkit_version", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )


def _create_roundtrips() -> None:
    op.create_table(
        "roundtrips",
        *_codec_item_columns("roundtrips"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("bitrate", sa.Float()),
        sa.Column("total_bitrate", sa.Float()),
        sa.Column("duration", sa.Float()),
        sa.Column("declared_delay", sa.Integer()),
        sa.Column("measured_delay", sa.Integer()),
        sa.Column("encode_seconds", sa.Float()),
        sa.Column("decode_seconds", sa.Float()),
        sa.Column("cache_key", sa.String(128)),
        sa.Column("codec_version", sa.String(64)),
        sa.Column("packages", JSON),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roundtrips"),
        sa.UniqueConstraint("run_id", "item_id", "codec", "codec_hash", name="uq_roundtrips_key"),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="ck_roundtrips_status"),
        sa.CheckConstraint("status = 'ok' OR (reason IS NOT NULL AND reason <> '')", name="ck_roundtrips_reason"),
    )


def _create_results() -> None:
    op.create_table(
        "results",
        *_codec_item_columns("results"),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("metric_version", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("reason", sa.Text()),
        sa.Column("native_rate", sa.Integer()),
        sa.Column("metric_rate", sa.Integer()),
        sa.Column("package", sa.String(100)),
        sa.Column("package_version", sa.String(64)),
        sa.Column("wall_seconds", sa.Float()),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sa.UniqueConstraint("run_id", "item_id", "codec", "codec_hash", "metric", "metric_version",
                            name="uq_results_key"),
        sa.CheckConstraint("status IN ('ok', 'failed', 'skipped')", name="ck_results_status"),
        sa.CheckConstraint("(status = 'ok' AND value IS NOT NULL) OR (status <> 'ok' AND value IS NULL)",
                           name="ck_results_value"),
        sa.CheckConstraint("status = 'ok' OR (reason IS NOT NULL AND reason <> '')", name="ck_results_reason"),
    )
    op.create_index("ix_results_run_id_codec_metric", "results", ["run_id", "codec", "metric"])
    op.create_index("ix_results_codec_metric", "results", ["codec", "metric"])


def upgrade() -> None:
    _create_runs()
    _create_roundtrips()
    _create_results()


def downgrade() -> None:
    op.drop_table("results")
    op.drop_table("roundtrips")
    op.drop_table("runs")
