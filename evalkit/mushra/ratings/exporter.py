"""Export a test's ratings (run in evalkit or imported): evalkit's tidy table, or webMUSHRA's mushra.csv layout.

- tidy (CSV or Parquet by the suffix): ratings_frame's columns plus `time`, the seconds the
  listener spent on the trial; `evalkit ratings import --format long` reads it back as it is.
- webmushra (CSV): session_test_id, session_uuid, trial_id, rating_stimulus, rating_score,
  rating_time (ms), rating_comment, one row per rating, as webMUSHRA's service writes them, so
  tools made for webMUSHRA results read evalkit's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from ...errors import ConfigError
from ...listening.responses import ratings_frame
from ...listening.safetext import spreadsheet_safe
from ...store import export as export_frame
from ...store.models_mushra import MushraSession, MushraTest, MushraTrial
from .readers import WEBMUSHRA_COLUMNS

__all__ = ["EXPORT_FORMATS", "tidy_ratings", "webmushra_ratings", "export_ratings"]

EXPORT_FORMATS = ("tidy", "webmushra")


def tidy_ratings(engine, name: str, completed_only: bool = False) -> pd.DataFrame:
    """One row per rating with the trial's time in seconds (NaN where unknown)."""
    frame = ratings_frame(engine, name, completed_only)
    times = _trial_times(engine, name)
    return frame.merge(times, on=["ordinal", "trial"], how="left")


def webmushra_ratings(engine, name: str, completed_only: bool = False) -> pd.DataFrame:
    frame = tidy_ratings(engine, name, completed_only)
    return pd.DataFrame(
        {
            "session_test_id": frame["test"],
            "session_uuid": frame["participant"],
            "trial_id": frame["item"],
            "rating_stimulus": frame["condition"],
            "rating_score": frame["score"].map(_plain_number),
            "rating_time": _milliseconds(frame["time"]),
            "rating_comment": frame.merge(_comments(engine, name), on=["ordinal", "trial", "slider"], how="left")[
                "comment"
            ].fillna(""),
        },
        columns=list(WEBMUSHRA_COLUMNS),
    )


def export_ratings(
    engine, name: str, path: str | Path, fmt: str = "tidy", force: bool = False, completed_only: bool = False
) -> Path:
    """Write the ratings of test `name` to `path`; refuses an existing file unless `force`."""
    path = Path(path)
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    if fmt == "webmushra":
        if path.suffix.lower() != ".csv":
            raise ConfigError(f"{path}: webMUSHRA's layout is a .csv file")
        frame = webmushra_ratings(engine, name, completed_only)
    else:
        frame = tidy_ratings(engine, name, completed_only)
    return export_frame(spreadsheet_safe(frame) if path.suffix.lower() == ".csv" else frame, path)


def _test_trials(engine, name: str) -> list:
    s, t = MushraSession, MushraTrial
    with engine.connect() as connection:
        query = (
            select(s.ordinal, t.position, t.started_at, t.submitted_at, t.client)
            .join(s, s.id == t.session_id)
            .join(MushraTest, MushraTest.id == s.test_id)
            .where(MushraTest.name == name, t.phase == "test")
        )
        return list(connection.execute(query).all())


def _comments(engine, name: str) -> pd.DataFrame:
    """(ordinal, trial, slider) -> the comment an imported rating carried (imports that kept them by slider)."""
    records = [
        {"ordinal": row.ordinal, "trial": row.position, "slider": int(slot), "comment": comment}
        for row in _test_trials(engine, name)
        if (row.client or {}).get("imported") and isinstance(row.client.get("comments"), dict)
        for slot, comment in row.client["comments"].items()
        if str(slot).isdigit()
    ]
    return pd.DataFrame(records, columns=["ordinal", "trial", "slider", "comment"]).astype(
        {"ordinal": "int64", "trial": "int64", "slider": "int64", "comment": "object"}
    )


def _trial_times(engine, name: str) -> pd.DataFrame:
    """(ordinal, trial) -> seconds on the trial: the imported time, else submitted minus started."""
    records = [
        {"ordinal": row.ordinal, "trial": row.position, "time": _seconds(row)} for row in _test_trials(engine, name)
    ]
    return pd.DataFrame(records, columns=["ordinal", "trial", "time"]).astype(
        {"ordinal": "int64", "trial": "int64", "time": "float64"}
    )


def _seconds(row) -> float:
    client = row.client or {}
    if client.get("imported"):
        return float("nan") if client.get("time_s") is None else float(client["time_s"])
    return (row.submitted_at - row.started_at).total_seconds()


def _plain_number(score: float) -> str:
    """60.0 -> '60' (webMUSHRA writes whole scores), 62.5 -> '62.5'."""
    return f"{score:g}" if float(score).is_integer() else repr(float(score))


def _milliseconds(seconds: pd.Series) -> pd.Series:
    """Whole milliseconds; empty where the time is unknown or too large to write as one."""
    ms = (seconds * 1000).round()
    return ms.where(ms.abs() < 2**53).astype("Int64")
