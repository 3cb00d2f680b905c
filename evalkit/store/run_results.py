"""Write and read the results database: runs, round trips, long-form results, summaries, export.

The writer is single: one process (the pipeline's driver) passes batches of rows; each batch is
one transaction and an idempotent upsert on the row's key, so a resumed run never duplicates.
Rows are plain mappings or dataclass instances whose fields are the table's column names.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats
from sqlalchemy import Engine, Float, Integer, String, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError

from .db import StoreError, write_transaction
from .models import RESULT_KEY, RESULT_STATUSES, ROUNDTRIP_KEY, ROUNDTRIP_STATUSES, Result, Roundtrip, Run, utcnow

__all__ = [
    "ensure_run",
    "drop_empty_run",
    "done_keys",
    "roundtrip_identities",
    "write_results",
    "write_roundtrips",
    "write_batch",
    "add_run_warnings",
    "run_warnings",
    "merge_warnings",
    "frame_summary",
    "results_frame",
    "roundtrips_frame",
    "delay_check",
    "summary",
    "mean_ci",
    "export",
    "SUMMARY_COLUMNS",
    "DURATION_WEIGHTED",
    "table_frame",
    "upsert_statement",
    "execute_upsert",
]

ResultKey = tuple[str, str, str, str, str]  # item_id, codec, codec_hash, metric, metric_version
SUMMARY_GROUP = ["codec", "codec_hash", "metric", "metric_version"]
SUMMARY_COLUMNS = SUMMARY_GROUP + ["n_ok", "n_failed", "n_skipped", "mean", "std", "ci_low", "ci_high"]
# One kbit/s definition everywhere: total payload bits over total seconds, i.e. per-item bitrates
# weighted by duration (a long item weighs more than a short one, as it does in a bitstream).
DURATION_WEIGHTED = ("bitrate_kbps",)
# Both dialects' inserts have on_conflict_do_update and excluded (the generic Insert has neither).
_INSERTS: dict[str, Callable[[Table], Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def ensure_run(engine: Engine, run_id: str, experiment_config: Mapping[str, Any], evalkit_version: str) -> bool:
    """Create run `run_id`, or refresh its config and version when resumed; True when new."""
    where = f"run {run_id!r}"
    values = {
        "experiment": _json_copy(experiment_config, f"{where}: experiment config"),
        "evalkit_version": _coerce(Run.__table__, "evalkit_version", evalkit_version, where),
        "updated_at": utcnow(),
    }
    run_id = _coerce(Run.__table__, "id", run_id, where)
    with write_transaction(engine) as connection:
        if connection.execute(select(Run.id).where(Run.id == run_id)).first() is not None:
            connection.execute(update(Run).where(Run.id == run_id).values(values))
            return False
        connection.execute(insert(Run).values(id=run_id, created_at=values["updated_at"], **values))
        return True


def drop_empty_run(engine: Engine, run_id: str) -> bool:
    """Delete run `run_id` if it holds no round trip and no result (a run whose set-up failed);
    True when it was deleted."""
    with write_transaction(engine) as connection:
        for table in (Result.__table__, Roundtrip.__table__):
            if connection.execute(select(table.c.run_id).where(table.c.run_id == run_id).limit(1)).first():
                return False
        return connection.execute(delete(Run.__table__).where(Run.id == run_id)).rowcount > 0


def add_run_warnings(engine: Engine, run_id: str, warnings: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge warnings ({key: {"text", "items"}}) into the run's: texts refreshed, item lists joined."""
    if not warnings:
        return
    with write_transaction(engine) as connection:
        stored = connection.execute(select(Run.warnings).where(Run.id == run_id)).scalar_one_or_none() or {}
        merged = merge_warnings(stored, warnings)
        connection.execute(
            update(Run).where(Run.id == run_id).values(warnings=_json_copy(merged, f"run {run_id!r}: warnings"))
        )


def merge_warnings(*groups: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Warnings {key: {"text", "items"}} joined: the last text of a key wins, its items are united."""
    merged: dict[str, dict[str, Any]] = {}
    for group in groups:
        for key, entry in group.items():
            items = sorted(set(merged.get(key, {}).get("items", [])) | set(entry.get("items", [])))
            merged[key] = {"text": entry["text"], "items": items}
    return merged


def run_warnings(engine: Engine, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's stored warnings, {key: {"text", "items"}}; {} when it has none."""
    with engine.connect() as connection:
        return connection.execute(select(Run.warnings).where(Run.id == run_id)).scalar_one_or_none() or {}


def done_keys(engine: Engine, run_id: str, *, retry_failed: bool = False) -> set[ResultKey]:
    """Keys of the results run `run_id` already holds; failures count unless `retry_failed`."""
    query = select(*(Result.__table__.c[name] for name in RESULT_KEY[1:])).where(Result.run_id == run_id)
    if retry_failed:
        query = query.where(Result.status != "failed")
    with engine.connect() as connection:
        return {tuple(row) for row in connection.execute(query)}


def roundtrip_identities(engine: Engine, run_id: str) -> dict[tuple[str, str, str], str]:
    """(item, codec, codec_hash) -> the content identity (cache key) each stored round trip of the
    run was made from; read without building a frame (a rerun asks for every round trip)."""
    t = Roundtrip.__table__.c
    query = select(t.item_id, t.codec, t.codec_hash, t.cache_key).where(t.run_id == run_id, t.cache_key.is_not(None))
    with engine.connect() as connection:
        return {(item, codec, codec_hash): key for item, codec, codec_hash, key in connection.execute(query)}


def write_results(engine: Engine, rows: Iterable[Any]) -> int:
    """Upsert metric results (mappings or dataclasses) in one transaction; returns distinct keys written."""
    return _upsert(engine, Result.__table__, RESULT_KEY, _prepare(rows, Result.__table__, RESULT_KEY, _check_result))


def write_roundtrips(engine: Engine, rows: Iterable[Any]) -> int:
    """Upsert codec round trips (mappings or dataclasses) in one transaction; returns distinct keys written."""
    table = Roundtrip.__table__
    return _upsert(engine, table, ROUNDTRIP_KEY, _prepare(rows, table, ROUNDTRIP_KEY, _check_roundtrip))


def write_batch(engine: Engine, roundtrips: Iterable[Any], results: Iterable[Any]) -> int:
    """Upsert round trips and results of several finished tasks in one transaction (one commit,
    one sync to disk, however many tasks); returns the distinct result keys written."""
    trips = _prepare(roundtrips, Roundtrip.__table__, ROUNDTRIP_KEY, _check_roundtrip)
    rows = _prepare(results, Result.__table__, RESULT_KEY, _check_result)
    if not trips and not rows:
        return 0
    with write_transaction(engine) as connection:
        _require_runs(connection, {row["run_id"] for row in trips + rows})
        execute_upsert(connection, engine, Roundtrip.__table__, ROUNDTRIP_KEY, trips)
        execute_upsert(connection, engine, Result.__table__, RESULT_KEY, rows)
        _touch_runs(connection, {row["run_id"] for row in trips + rows})
    return len(rows)


def results_frame(engine: Engine, run_id: str | None = None) -> pd.DataFrame:
    """Long-form results (one row per key), all runs unless `run_id` is given."""
    return table_frame(engine, Result.__table__, ("run_id", "codec", "metric", "item_id"), run_id=run_id)


def roundtrips_frame(engine: Engine, run_id: str | None = None) -> pd.DataFrame:
    """Round trips (one row per item and codec configuration), all runs unless `run_id` is given."""
    return table_frame(engine, Roundtrip.__table__, ("run_id", "codec", "item_id"), run_id=run_id)


def delay_check(trips: pd.DataFrame) -> pd.DataFrame:
    """Per codec configuration: round trips whose delay was measured (`checked`), how many
    missed the declared delay by more than their tolerance (`misaligned`), the declared delay
    and the median measured one, in samples at the codec's rate."""
    trips = trips[(trips["status"] == "ok") & trips["measured_delay"].notna() & trips["delay_tolerance"].notna()]
    off = (trips["measured_delay"] - trips["declared_delay"]).abs() > trips["delay_tolerance"]
    checked = trips.assign(off=off.astype(int)).groupby(["codec", "codec_hash"], as_index=False)
    return checked.agg(
        checked=("off", "size"),
        misaligned=("off", "sum"),
        declared=("declared_delay", "first"),
        measured_median=("measured_delay", "median"),
    )


def summary(
    engine: Engine,
    run_id: str | None,
    confidence: float = 0.95,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Per codec configuration × metric version: status counts, mean, std and a t-based CI, over run
    `run_id` (None: every run).

    Computed in Python from the stored values, so both backends give identical numbers. `bounds`
    (metric -> (low, high)) clips each interval to what the metric can take. kbit/s rows are
    duration-weighted (DURATION_WEIGHTED).
    """
    columns = [Result.__table__.c[name] for name in SUMMARY_GROUP + ["status", "value", "item_id"]]
    with engine.connect() as connection:
        query = select(*columns) if run_id is None else select(*columns).where(Result.run_id == run_id)
        rows = connection.execute(query).all()
        durations = _durations(connection, run_id) if any(row.metric in DURATION_WEIGHTED for row in rows) else {}
    groups: dict[tuple, list[tuple[str, float | None, float | None]]] = {}
    for *key, status, value, item in rows:
        groups.setdefault(tuple(key), []).append((status, value, durations.get((item, key[0], key[1]))))
    return _summary_frame(groups, confidence, bounds)


def frame_summary(
    frame: pd.DataFrame, confidence: float = 0.95, bounds: Mapping[str, tuple[float, float]] | None = None
) -> pd.DataFrame:
    """`summary` of result rows held in memory (e.g. `runner.score_pairs`), not in the database;
    kbit/s rows are not duration-weighted there."""
    groups: dict[tuple, list[tuple[str, float | None, float | None]]] = {}
    if not frame.empty:
        for *key, status, value in frame[SUMMARY_GROUP + ["status", "value"]].itertuples(index=False, name=None):
            groups.setdefault(tuple(key), []).append((status, None if value != value else value, None))
    return _summary_frame(groups, confidence, bounds)


def _summary_frame(
    groups: dict[tuple, list], confidence: float, bounds: Mapping[str, tuple[float, float]] | None
) -> pd.DataFrame:
    records = [
        _group_stats(key, entries, confidence, (bounds or {}).get(key[2])) for key, entries in sorted(groups.items())
    ]
    return pd.DataFrame(records, columns=SUMMARY_COLUMNS)


def mean_ci(
    values: Iterable[float],
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
    weights: Iterable[float] | None = None,
) -> tuple[float, float, float, float]:
    """(mean, sample std, CI low, CI high) of `values` with Student's t; NaN where undefined.

    `bounds` clips the interval to the values a metric can take (a t interval of STOI must not pass 1).
    With `weights` the mean is weighted (kbit/s: by each item's duration) and the interval is the
    ratio estimator's: se^2 = sum((w_i (x_i - mean))^2) / (n (n - 1) mean(w)^2).
    """
    pairs = sorted(zip(values, weights) if weights is not None else ((v, 1.0) for v in values))
    data = [float(value) for value, _ in pairs]  # sorted: the result cannot depend on row order
    n = len(data)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    if weights is not None:
        w = [float(weight) for _, weight in pairs]
        mean = math.fsum(x * v for x, v in zip(w, data)) / math.fsum(w)
    else:
        mean = math.fsum(data) / n
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    std = statistics.stdev(data)
    if weights is None:
        se = std / math.sqrt(n)
    else:
        spread = math.fsum((x * (v - mean)) ** 2 for x, v in zip(w, data))
        se = math.sqrt(spread / (n * (n - 1))) / (math.fsum(w) / n)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * se
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, std, low, high


def export(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to a .csv or .parquet file (chosen by the suffix); returns the path.

    Item ids and reasons come from other people's manifests and files: in a CSV, text a spreadsheet
    would run as a formula (=HYPERLINK(...), +cmd) starts with ' instead. Parquet keeps it as it is."""
    from ..listening.safetext import spreadsheet_safe

    path = Path(path)
    writers: dict[str, Callable[[], None]] = {
        ".csv": lambda: spreadsheet_safe(df).to_csv(path, index=False),
        ".parquet": lambda: df.to_parquet(path, index=False, engine="pyarrow"),
    }
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise StoreError(f"{path}: cannot export to {path.suffix or 'a file without suffix'}; use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer()
    return path


def _group_stats(
    key: tuple,
    entries: list[tuple[str, float | None, float | None]],
    confidence: float,
    bounds: tuple[float, float] | None,
) -> dict[str, Any]:
    counts = {status: sum(1 for s, *_ in entries if s == status) for status in RESULT_STATUSES}
    ok = [(v, d) for s, v, d in entries if s == "ok" and v is not None]  # an ok row has a value (CHECK)
    weighted = key[2] in DURATION_WEIGHTED and ok and all(d is not None and d > 0 for _, d in ok)
    mean, std, low, high = mean_ci(
        [v for v, _ in ok], confidence, bounds, [d for _, d in ok if d is not None] if weighted else None
    )
    return {
        **dict(zip(SUMMARY_GROUP, key)),
        **{f"n_{status}": count for status, count in counts.items()},
        "mean": mean,
        "std": std,
        "ci_low": low,
        "ci_high": high,
    }


def _durations(connection: Any, run_id: str | None) -> dict[tuple[str, str, str], float]:
    """(item, codec, codec_hash) -> seconds of input audio, from the run's round trips (None: every run's)."""
    t = Roundtrip.__table__.c
    query = select(t.item_id, t.codec, t.codec_hash, t.duration)
    query = query if run_id is None else query.where(t.run_id == run_id)
    return {(item, codec, codec_hash): duration for item, codec, codec_hash, duration in connection.execute(query)}


def _prepare(rows: Iterable[Any], table: Table, key: tuple[str, ...], check: Callable[[dict], None]) -> list[dict]:
    """Validated rows with every column present; the last of several rows with one key wins."""
    columns = [column.name for column in table.columns if column.name != "id"]
    now = utcnow()
    prepared: dict[tuple, dict[str, Any]] = {}
    for raw in rows:
        data = _as_dict(raw)
        where = _describe(data, key)
        if unknown := sorted(data.keys() - set(columns)):
            raise StoreError(f"{where}: unknown field(s) {unknown}; {table.name} has {columns}")
        row = {name: _coerce(table, name, data.get(name), where) for name in columns}
        row["created_at"] = row["created_at"] or now
        check(row)
        prepared[tuple(row[name] for name in key)] = row
    return list(prepared.values())


def _as_dict(row: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {field.name: getattr(row, field.name) for field in dataclasses.fields(row)}
    if isinstance(row, Mapping):
        return dict(row)
    raise StoreError(f"a row must be a mapping or a dataclass instance, not {type(row).__name__}")


def _describe(data: Mapping[str, Any], key: tuple[str, ...]) -> str:
    return "row " + ", ".join(f"{name}={data.get(name)!r}" for name in key)


def _coerce(table: Table, name: str, value: Any, where: str) -> Any:
    """Plain Python scalars for the driver: numpy numbers become float/int on both backends."""
    column = table.c[name]
    if value is None or (isinstance(value, str) and not value):
        if not column.nullable and name != "created_at":
            raise StoreError(f"{where}: {name} is required")
        return None
    if isinstance(column.type, String):
        return _text(column, value, where)
    if name == "packages":
        return _json_copy(value, f"{where}: packages")
    convert = float if isinstance(column.type, Float) else int if isinstance(column.type, Integer) else None
    try:
        return value if convert is None else convert(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{where}: {name} must be a number, got {value!r}") from exc


def _text(column: Any, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{where}: {column.name} must be a string, got {type(value).__name__}")
    # SQLite would store an over-long string that PostgreSQL refuses: refuse it on both.
    if column.type.length is not None and len(value) > column.type.length:
        raise StoreError(f"{where}: {column.name} is longer than {column.type.length} characters")
    return value


def _check_result(row: dict[str, Any]) -> None:
    where, status, value = _describe(row, RESULT_KEY), row["status"], row["value"]
    if status not in RESULT_STATUSES:
        raise StoreError(f"{where}: status {status!r} is not one of {RESULT_STATUSES}")
    if status == "ok" and (value is None or not math.isfinite(value)):
        raise StoreError(f"{where}: an ok result needs a finite value, got {value!r}; store a failure instead")
    if status != "ok" and value is not None:
        raise StoreError(f"{where}: a {status} result has no value (got {value!r}); its reason says why")
    if status != "ok" and not row["reason"]:
        raise StoreError(f"{where}: a {status} result needs a reason")


def _check_roundtrip(row: dict[str, Any]) -> None:
    where, status = _describe(row, ROUNDTRIP_KEY), row["status"]
    if status not in ROUNDTRIP_STATUSES:
        raise StoreError(f"{where}: status {status!r} is not one of {ROUNDTRIP_STATUSES}")
    if status != "ok" and not row["reason"]:
        raise StoreError(f"{where}: a failed round trip needs a reason")


def _upsert(engine: Engine, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    run_ids = {row["run_id"] for row in rows}
    with write_transaction(engine) as connection:
        _require_runs(connection, run_ids)
        execute_upsert(connection, engine, table, key, rows)
        _touch_runs(connection, run_ids)
    return len(rows)


def execute_upsert(
    connection: Any, engine: Engine, table: Table, key: tuple[str, ...], rows: list[dict], what: str = ""
) -> None:
    """Upsert `rows` in the caller's transaction; a rejected batch is a StoreError naming the
    table and `what` the rows are (default: how many)."""
    if not rows:
        return
    try:
        connection.execute(upsert_statement(engine, table, key), rows)
    except (IntegrityError, DataError) as exc:
        raise StoreError(f"{table.name}: {what or f'batch of {len(rows)} rows'} rejected: {exc.orig}") from exc


def _touch_runs(connection: Any, run_ids: set[str]) -> None:
    connection.execute(update(Run).where(Run.id.in_(run_ids)).values(updated_at=utcnow()))


def upsert_statement(engine: Engine, table: Table, key: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE for SQLite and PostgreSQL."""
    return _upsert_statement(engine.dialect.name, table, key)


@cache
def _upsert_statement(dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    """Built once per table: building it costs more than running it for one task's rows."""
    dialect_insert = _INSERTS.get(dialect)
    if dialect_insert is None:
        raise StoreError(f"upserts are implemented for SQLite and PostgreSQL, not {dialect}")
    statement = dialect_insert(table)
    changed = {
        column.name: statement.excluded[column.name]
        for column in table.columns
        if column.name not in key and column.name != "id"
    }
    return statement.on_conflict_do_update(index_elements=list(key), set_=changed)


def _require_runs(connection: Any, run_ids: set[str]) -> None:
    known = set(connection.execute(select(Run.id).where(Run.id.in_(run_ids))).scalars())
    if missing := sorted(run_ids - known):
        raise StoreError(f"unknown run(s) {missing}: call ensure_run() before writing rows")


def table_frame(engine: Engine, table: Table, order: tuple[str, ...], **equal: Any) -> pd.DataFrame:
    """A table's rows as a DataFrame with stable dtypes, filtered on `column=value` (None: no filter)."""
    columns = [column for column in table.columns if column.name != "id"]
    query = select(*columns)
    for name, value in equal.items():
        if value is not None:
            query = query.where(table.c[name] == value)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=[column.name for column in columns])
    frame = frame.astype({column.name: _dtype(column) for column in columns if _dtype(column)})
    # Sorted here, not by ORDER BY: PostgreSQL's collation would order strings unlike SQLite.
    return frame.sort_values(list(order), kind="stable", ignore_index=True)


def _dtype(column: Any) -> str | None:
    """Stable dtypes, also for empty frames and all-NULL columns."""
    if isinstance(column.type, Float):
        return "float64"
    if isinstance(column.type, Integer):
        return "Int64"  # nullable: delays and rates may be missing
    if isinstance(column.type, String):  # Text too; NaN marks NULL, as pandas 3's default "str"
        return pd.StringDtype(na_value=math.nan)  # needs pandas >= 2.3
    if column.name == "created_at":
        return "datetime64[us, UTC]"
    return None


def _json_copy(value: Any, what: str) -> Any:
    """A JSON round-tripped copy: fails early, naming the owner, on anything JSON cannot hold."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON-serialisable: {exc}") from exc
