"""Write and read codec profiles and loss curves in the results database (tables of models_profile).

A profile is keyed by (codec, codec_hash, codec_version) and a loss-curve point by that plus its
condition and metric; writing again replaces the old row (an idempotent upsert), so profiling a
card twice keeps the latest measurement.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session

from ..store.db import StoreError, write_transaction
from ..store.models import utcnow
from ..store.models_profile import LOSS_CURVE_KEY, PROFILE_KEY, CodecProfile, LossCurve
from ..store.run_results import execute_upsert, table_frame
from .curves import CurvePoint
from .profiler import Profile, ProfileRun

__all__ = ["write_profile", "profiles_frame", "loss_curves_frame", "read_profile"]


def write_profile(engine: Engine, run: ProfileRun) -> None:
    """Store a profile and its loss curve in one transaction."""
    profile = _row(run.profile)
    config = {name: profile[name] for name in PROFILE_KEY}
    points = [{**config, **_row(point)} for point in run.curve]
    with write_transaction(engine) as connection:
        _upsert(connection, engine, CodecProfile.__table__, PROFILE_KEY, [profile])
        _upsert(connection, engine, LossCurve.__table__, LOSS_CURVE_KEY, points)


def profiles_frame(engine: Engine, codec: str | None = None) -> pd.DataFrame:
    """Every stored profile (or one card's), sorted by codec."""
    return table_frame(engine, CodecProfile.__table__, ("codec", "codec_hash", "codec_version"), codec=codec)


def loss_curves_frame(engine: Engine, codec: str | None = None) -> pd.DataFrame:
    """Every stored loss-curve point (or one card's), sorted by codec and condition."""
    order = ("codec", "codec_hash", "metric", "loss_model", "loss_rate", "seed")
    return table_frame(engine, LossCurve.__table__, order, codec=codec)


def read_profile(engine: Engine, codec: str, codec_hash: str) -> Profile | None:
    """The newest stored profile of one card configuration, as a Profile; None if there is none."""
    query = (
        select(CodecProfile)
        .where(CodecProfile.codec == codec, CodecProfile.codec_hash == codec_hash)
        .order_by(CodecProfile.created_at.desc())
        .limit(1)
    )
    with Session(engine) as session:
        row = session.scalars(query).first()
        if row is None:
            return None
        return Profile(**{f.name: getattr(row, f.name) for f in dataclasses.fields(Profile)})


def _row(record: Profile | CurvePoint) -> dict:
    row = dataclasses.asdict(record)
    for name, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise StoreError(f"{getattr(record, 'codec', 'profile')}: {name} is {value}; store a failure instead")
    if "packages" in row:
        row["packages"] = json.loads(json.dumps(row["packages"]))
    return {**row, "created_at": utcnow()}


def _upsert(connection, engine: Engine, table: Table, key: tuple[str, ...], rows: list[dict]) -> None:
    what = f"{len(rows)} row(s) of {rows[0]['codec']}" if rows else ""
    execute_upsert(connection, engine, table, key, rows, what)
