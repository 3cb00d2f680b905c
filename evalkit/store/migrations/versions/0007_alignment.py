"""Every scored pair records its alignment (lag, length change); runs keep their warnings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("lag", "length_change")


def upgrade() -> None:
    for table in ("results", "roundtrips"):
        for name in _COLUMNS:
            op.add_column(table, sa.Column(name, sa.Integer()))
    op.add_column("runs", sa.Column("warnings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))


def downgrade() -> None:
    for table, names in (("results", _COLUMNS), ("roundtrips", _COLUMNS), ("runs", ("warnings",))):
        with op.batch_alter_table(table) as batch:  # SQLite drops a column by copying the table
            for name in names:
                batch.drop_column(name)
