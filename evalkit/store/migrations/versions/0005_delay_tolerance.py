"""Round trips record the tolerance of their delay check, so a run can list misaligned codecs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("roundtrips", sa.Column("delay_tolerance", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("roundtrips") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("delay_tolerance")
