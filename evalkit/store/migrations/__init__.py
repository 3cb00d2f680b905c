"""Alembic migrations of the results database; `evalkit.store.db.migrate` runs them (no alembic.ini)."""
