"""One run's stored data, read once: results, round trips, the experiment config, speakers, cache root.

The run's experiment config is stored as the user wrote it, so its dataset and cache paths may
be relative to a YAML file whose location was not stored; `resolve_path` tries the usual bases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, inspect, select

from ..errors import ConfigError, EvalkitError
from ..resources import data_root
from ..store import results_frame, roundtrips_frame
from ..store.models import Run

__all__ = [
    "RunData",
    "load_run",
    "list_runs",
    "resolve_path",
    "item_speakers",
    "dataset_items",
    "table_exists",
    "ROOT",
    "UNKNOWN_SPEAKER",
]

ROOT = data_root()  # the checkout's root, or the installed package's copy of its data folders
UNKNOWN_SPEAKER = "(unknown)"


@dataclass
class RunData:
    """Everything the report and the app read about one run; `notes` say what could not be found."""

    run_id: str
    config: dict[str, Any]
    results: pd.DataFrame
    roundtrips: pd.DataFrame
    dataset_path: Path | None = None
    cache_root: Path | None = None
    speakers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created_at: Any = None
    evalkit_version: str | None = None


def list_runs(engine: Engine) -> list[str]:
    """Run names in the database, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(Run.id, Run.updated_at)).all()
    return [run_id for run_id, _ in sorted(rows, key=lambda row: row[1], reverse=True)]


def load_run(engine: Engine, run_id: str) -> RunData:
    """Read run `run_id`; ConfigError names the runs there are when it does not exist."""
    with engine.connect() as connection:
        row = connection.execute(
            select(Run.experiment, Run.created_at, Run.evalkit_version).where(Run.id == run_id)
        ).first()
    if row is None:
        known = ", ".join(list_runs(engine)) or "none"
        raise ConfigError(f"no run named {run_id!r} in the database (runs: {known})")
    config = dict(row.experiment or {})
    data = RunData(
        run_id,
        config,
        results_frame(engine, run_id),
        roundtrips_frame(engine, run_id),
        created_at=row.created_at,
        evalkit_version=row.evalkit_version,
    )
    resolved = config.get("resolved", {})  # absolute paths, stored since evalkit 0.1
    data.dataset_path = resolve_path(resolved.get("dataset") or config.get("dataset"))
    data.cache_root = resolve_path(resolved.get("cache") or config.get("cache", "results/cache"))
    _attach_speakers(data)
    if data.cache_root is None:
        data.notes.append(f"decoded-audio cache {config.get('cache')!r} not found: drill-down plays no audio")
    return data


def resolve_path(value: str | None, bases: tuple[Path, ...] | None = None) -> Path | None:
    """`value` if absolute, else the first existing path under cwd, experiments/ or the repository."""
    if not value:
        return None
    path = Path(value)
    if path.is_absolute():
        return path if path.exists() else None
    # The experiment YAML's folder was not stored: experiments/ is where the shipped ones live.
    for base in bases or (Path.cwd(), ROOT / "experiments", ROOT):
        candidate = (base / path).resolve()
        if candidate.exists():
            return candidate
    return None


def item_speakers(dataset_path: str | Path) -> dict[str, str]:
    """item id -> speaker from a dataset (items without one map to UNKNOWN_SPEAKER)."""
    return {item.id: item.speaker or UNKNOWN_SPEAKER for item in dataset_items(dataset_path)}


def dataset_items(dataset_path: str | Path) -> tuple:
    """The dataset's items, read once per file version (the app asks on every page view)."""
    path = Path(dataset_path)
    return _items(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _items(path: str, _mtime: int) -> tuple:
    from ..datasets import load_dataset

    return tuple(load_dataset(path, allow_outside=True))  # the run accepted it; only its metadata is read


def _attach_speakers(data: RunData) -> None:
    if data.dataset_path is None:
        data.notes.append(f"dataset {data.config.get('dataset')!r} not found: no speaker filter")
        return
    try:
        data.speakers = item_speakers(data.dataset_path)
    except (EvalkitError, OSError) as err:
        data.notes.append(f"dataset {data.dataset_path} unreadable ({err}): no speaker filter")


def table_exists(engine: Engine, name: str) -> bool:
    """Whether the database has table `name` (tables of other parts arrive with their migrations)."""
    return inspect(engine).has_table(name)
