"""MUSHRA tests whose ratings were imported (webMUSHRA, BeaqleJS, long tables), and declared screening.

Tests gain `origin` (evalkit or the import format) and `screening` (rule, hidden reference and
anchors as declared); participants may come from an import; an imported item's duration may be
unknown.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ORIGINS = ("evalkit", "webmushra", "beaqlejs", "long")
SOURCES = ("invite", "open", "import")
# 0004 named its checks twice over (the naming convention applied to a full name): drop it by that name.
OLD_SOURCE_CHECK = "ck_mushra_participants_ck_mushra_participants_source"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("mushra_tests") as batch:  # SQLite changes constraints by copying the table
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="evalkit"))
        batch.add_column(sa.Column("screening", JSON))
        batch.create_check_constraint(op.f("ck_mushra_tests_origin"), _one_of("origin", ORIGINS))
    with op.batch_alter_table("mushra_participants") as batch:
        batch.drop_constraint(op.f(OLD_SOURCE_CHECK), type_="check")
        batch.create_check_constraint(op.f("ck_mushra_participants_source"), _one_of("source", SOURCES))
    with op.batch_alter_table("mushra_items") as batch:
        batch.alter_column("duration", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM mushra_tests WHERE origin <> 'evalkit'")  # imported tests cannot live in 0005
    with op.batch_alter_table("mushra_items") as batch:
        batch.alter_column("duration", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table("mushra_participants") as batch:
        batch.drop_constraint(op.f("ck_mushra_participants_source"), type_="check")
        batch.create_check_constraint(op.f(OLD_SOURCE_CHECK), _one_of("source", SOURCES[:2]))
    with op.batch_alter_table("mushra_tests") as batch:
        batch.drop_constraint(op.f("ck_mushra_tests_origin"), type_="check")
        batch.drop_column("screening")
        batch.drop_column("origin")
