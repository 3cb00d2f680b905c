"""The results database: SQLAlchemy models, Alembic migrations, and the write/read API."""

from . import models_content, models_mushra, models_profile  # noqa: F401  (their tables join Base.metadata)
from .content import content_events_frame, write_content_events
from .db import StoreError, connect, database_url, migrate
from .models import Base, Result, Roundtrip, Run
from .run_results import (
    add_run_warnings,
    delay_check,
    done_keys,
    drop_empty_run,
    ensure_run,
    export,
    frame_summary,
    mean_ci,
    merge_warnings,
    results_frame,
    roundtrip_identities,
    roundtrips_frame,
    run_warnings,
    summary,
    write_batch,
    write_results,
    write_roundtrips,
)

__all__ = [
    "connect",
    "database_url",
    "migrate",
    "StoreError",
    "Base",
    "Run",
    "Roundtrip",
    "Result",
    "ensure_run",
    "drop_empty_run",
    "done_keys",
    "write_batch",
    "write_results",
    "write_roundtrips",
    "add_run_warnings",
    "run_warnings",
    "merge_warnings",
    "frame_summary",
    "results_frame",
    "roundtrip_identities",
    "roundtrips_frame",
    "delay_check",
    "summary",
    "mean_ci",
    "export",
    "write_content_events",
    "content_events_frame",
]
