"""Alembic environment: migrates the connection evalkit.store.db hands over, else the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from evalkit.store import Base  # the package imports every models_* module


def _configure(**kwargs: object) -> None:
    # Batch mode lets future revisions ALTER tables on SQLite (by copy and rename).
    context.configure(target_metadata=Base.metadata, render_as_batch=True, compare_type=True, **kwargs)
    with context.begin_transaction():
        context.run_migrations()


def _online(connection: Connection) -> None:
    _configure(connection=connection)


def main() -> None:
    config = context.config
    if context.is_offline_mode():
        _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _online(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.begin() as connection:
        _online(connection)


main()
