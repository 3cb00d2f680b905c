"""Write and read phoneme events (hallucination candidates) beside the results rows."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, delete

from .db import write_transaction
from .models import utcnow
from .models_content import ContentEvent
from .run_results import table_frame

__all__ = ["write_content_events", "content_events_frame"]

_ITEM_KEY = ("run_id", "item_id", "codec", "codec_hash", "metric_version")


def write_content_events(engine: Engine, key: dict[str, Any], events: list[dict]) -> int:
    """Replace the events of one (run, item, codec, metric version) in one transaction."""
    table = ContentEvent.__table__
    with write_transaction(engine) as connection:
        connection.execute(delete(table).where(*(table.c[name] == key[name] for name in _ITEM_KEY)))
        if events:
            now = utcnow()
            connection.execute(
                table.insert(), [{**{k: key[k] for k in _ITEM_KEY}, **e, "created_at": now} for e in events]
            )
    return len(events)


def content_events_frame(engine: Engine, run_id: str | None = None, codec: str | None = None) -> pd.DataFrame:
    return table_frame(
        engine, ContentEvent.__table__, ("run_id", "codec", "item_id", "start"), run_id=run_id, codec=codec
    )
