"""Codec profiles: complexity, speed, memory and latency; quality-versus-packet-loss curves.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the model types: a revision must not change when models_profile.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def _codec_config_columns() -> list[sa.Column]:
    return [
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("codec", sa.String(200), nullable=False),
        sa.Column("codec_hash", sa.String(128), nullable=False),
        sa.Column("codec_version", sa.String(200), nullable=False),
    ]


def _create_profiles() -> None:
    op.create_table(
        "profiles",
        *_codec_config_columns(),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("family", sa.String(100), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("nominal_bitrate", sa.Float()),
        sa.Column("params_encoder", sa.BigInteger()),
        sa.Column("params_decoder", sa.BigInteger()),
        sa.Column("macs_encoder_per_s", sa.Float()),
        sa.Column("macs_decoder_per_s", sa.Float()),
        sa.Column("encode_rtf", sa.Float(), nullable=False),
        sa.Column("decode_rtf", sa.Float(), nullable=False),
        sa.Column("encode_cpu_s_per_hour", sa.Float(), nullable=False),
        sa.Column("decode_cpu_s_per_hour", sa.Float(), nullable=False),
        sa.Column("peak_memory_mb", sa.Float(), nullable=False),
        sa.Column("working_memory_mb", sa.Float(), nullable=False),
        sa.Column("frame_samples", sa.Integer(), nullable=False),
        sa.Column("declared_delay", sa.Integer(), nullable=False),
        sa.Column("measured_delay", sa.Integer()),
        sa.Column("declared_latency_ms", sa.Float(), nullable=False),
        sa.Column("measured_latency_ms", sa.Float()),
        sa.Column("latency_ok", sa.Boolean()),
        sa.Column("streaming", sa.Boolean(), nullable=False),
        sa.Column("concealment", sa.String(32), nullable=False),
        sa.Column("audio_seconds", sa.Float(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("packages", JSON),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
        sa.UniqueConstraint("codec", "codec_hash", "codec_version", name="uq_profiles_key"),
    )


def _create_loss_curves() -> None:
    op.create_table(
        "loss_curves",
        *_codec_config_columns(),
        sa.Column("loss_model", sa.String(32), nullable=False),
        sa.Column("loss_rate", sa.Float(), nullable=False),
        sa.Column("mean_burst", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("lost_fraction", sa.Float(), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("metric_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("reason", sa.Text()),
        sa.Column("package", sa.String(100)),
        sa.Column("package_version", sa.String(64)),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loss_curves"),
        sa.UniqueConstraint("codec", "codec_hash", "codec_version", "loss_model", "loss_rate", "mean_burst", "seed",
                            "metric", "metric_version", name="uq_loss_curves_key"),
        sa.CheckConstraint("status IN ('ok', 'failed', 'skipped')", name="ck_loss_curves_status"),
        sa.CheckConstraint("(status = 'ok' AND value IS NOT NULL) OR (status <> 'ok' AND value IS NULL)",
                           name="ck_loss_curves_value"),
        sa.CheckConstraint("status = 'ok' OR (reason IS NOT NULL AND reason <> '')", name="ck_loss_curves_reason"),
    )


def upgrade() -> None:
    _create_profiles()
    _create_loss_curves()


def downgrade() -> None:
    op.drop_table("loss_curves")
    op.drop_table("profiles")
