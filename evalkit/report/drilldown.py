"""Per-item drill-down: reference and decoded audio, the item's metric values, hallucination events.

Decoded audio lives in the run's content-addressed cache (roundtrips.cache_key); the reference is
the dataset item. Hallucination events come from table `content_events` (the phoneme metric)
when it exists; its columns are read by name, so an event needs only item_id, codec and a time span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from ..audio import Audio, load
from ..cache import DecodedCache
from ..errors import EvalkitError
from .data import RunData, dataset_items, table_exists
from .leaderboard import condition_entry, current_results, run_base

__all__ = [
    "ItemView",
    "item_view",
    "read_events",
    "load_audio",
    "snippet",
    "event_snippets",
    "NO_EVENTS",
    "EVENT_COLUMNS",
]

NO_EVENTS = "no hallucination events stored: add metric `phoneme` to the experiment and rerun it"
EVENT_COLUMNS = ["start", "end", "ref_phones", "deg_phones", "confidence"]
# Accepted spellings of the event columns, first match wins (the content table is still being designed).
_ALIASES = {
    "start": ("start", "start_s", "t_start"),
    "end": ("end", "end_s", "t_end"),
    "ref_phones": ("ref_phones", "reference", "ref"),
    "deg_phones": ("deg_phones", "decoded", "deg"),
    "confidence": ("confidence", "score"),
}


@dataclass
class ItemView:
    """One item through one codec: file paths (None when missing), metric rows, events, notes."""

    item_id: str
    codec: str
    reference_path: Path | None
    decoded_path: Path | None
    metrics: pd.DataFrame
    events: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def item_view(engine: Engine, run: RunData, item_id: str, codec: str) -> ItemView:
    """Everything the drill-down shows for (item, codec) of `run`."""
    rows = current_results(run.results)
    rows = rows[(rows["item_id"] == item_id) & (rows["codec"] == codec)]
    metrics = rows[["metric", "status", "value", "reason", "metric_rate"]].reset_index(drop=True)
    view = ItemView(
        item_id,
        codec,
        _reference(run, item_id),
        _decoded(run, item_id, codec),
        metrics,
        read_events(engine, run.run_id, item_id, codec),
    )
    if view.reference_path is None:
        view.notes.append(f"reference audio of {item_id} not found (dataset {run.config.get('dataset')!r})")
    if view.decoded_path is None:
        view.notes.append(_no_decoded_audio(run, rows, item_id, codec))
    return view


def _no_decoded_audio(run: RunData, rows: pd.DataFrame, item_id: str, codec: str) -> str:
    """Why (item, codec) has no decoded audio: its failure when it failed (a rerun would fail again)."""
    trips = current_results(run.roundtrips)
    trips = trips[(trips["item_id"] == item_id) & (trips["codec"] == codec)] if not trips.empty else trips
    failed = trips[trips["status"] == "failed"] if not trips.empty else trips
    if trips.empty and not rows.empty and (rows["status"] == "failed").all():
        failed = rows  # it failed before any round trip (an unreadable or degenerate item)
    if not failed.empty:
        return f"no decoded audio of {item_id} through {codec}: it failed ({failed['reason'].iloc[0]})"
    return f"decoded audio of {item_id} through {codec} is not in the cache (rerun the experiment)"


def read_events(
    engine: Engine, run_id: str | None = None, item_id: str | None = None, codec: str | None = None
) -> pd.DataFrame | None:
    """Hallucination events (EVENT_COLUMNS plus item_id, codec), or None when the table is absent."""
    if not table_exists(engine, "content_events"):
        return None
    with engine.connect() as connection:
        frame = pd.read_sql(text("SELECT * FROM content_events"), connection)
    for column, value in (("run_id", run_id), ("item_id", item_id), ("codec", codec)):
        if value is not None and column in frame:
            frame = frame[frame[column] == value]
    renamed = {next((a for a in aliases if a in frame), None): name for name, aliases in _ALIASES.items()}
    frame = frame.rename(columns={old: new for old, new in renamed.items() if old})
    for name in EVENT_COLUMNS:
        frame[name] = frame[name] if name in frame else np.nan
    return frame.sort_values("start", kind="stable", ignore_index=True)


def load_audio(path: Path | None) -> Audio | None:
    """The audio at `path`, or None when it is missing or unreadable."""
    if path is None:
        return None
    try:
        return load(path)
    except (EvalkitError, OSError):
        return None


def snippet(audio: Audio, start: float, end: float, pad: float = 0.25) -> Audio:
    """The span [start - pad, end + pad] seconds of `audio`, clipped to the signal."""
    first = min(max(0, round((start - pad) * audio.sample_rate)), audio.frames - 1)
    last = min(audio.frames, max(first + 1, round((end + pad) * audio.sample_rate)))
    return Audio(audio.samples[:, first:last], audio.sample_rate, audio.id)


def event_snippets(
    events: pd.DataFrame | None, reference: Audio | None, decoded: Audio | None, limit: int = 10, pad: float = 0.25
) -> list[tuple[str, Audio | None, Audio | None]]:
    """(label, reference clip, decoded clip) for the first `limit` events that have a time span."""
    if events is None or events.empty:
        return []
    timed = events[events["start"].notna() & events["end"].notna()].head(limit)
    return [
        (
            f"{e.start:.2f}–{e.end:.2f} s: {e.ref_phones} → {e.deg_phones}",
            None if reference is None else snippet(reference, e.start, e.end, pad),
            None if decoded is None else snippet(decoded, e.start, e.end, pad),
        )
        for e in timed.itertuples()
    ]


def _reference(run: RunData, item_id: str) -> Path | None:
    if run.dataset_path is None:
        return None
    try:
        items = dataset_items(run.dataset_path)
    except (EvalkitError, OSError):
        return None
    path = next((item.path for item in items if item.id == item_id), None)
    return path if path is not None and Path(path).is_file() else None


def _decoded(run: RunData, item_id: str, codec: str) -> Path | None:
    if (made_elsewhere := _decoded_elsewhere(run, item_id, codec)) is not None:
        return made_elsewhere
    trips = current_results(run.roundtrips)
    keys = trips.loc[(trips["item_id"] == item_id) & (trips["codec"] == codec), "cache_key"].dropna()
    if keys.empty or run.cache_root is None:
        return None
    path = DecodedCache(run.cache_root).path(str(keys.iloc[0]))
    return path if path.is_file() else None


def _decoded_elsewhere(run: RunData, item_id: str, codec: str) -> Path | None:
    """The user's own file of (item, condition of decoded files made elsewhere): read where it lies, never cached."""
    from ..conditions import match_files

    entry = condition_entry(run, codec)
    source = (entry.get("decoded") or entry.get("files")) if entry else None
    if not source:
        return None
    try:
        found = match_files(source, run_base(run), [item_id], allow_outside=bool(run.config.get("allow_outside")))
    except EvalkitError:
        return None
    return found.files.get(item_id)
