"""Tables of the profile part of evalkit: codec profiles and quality-versus-loss curves.

Both are keyed by codec card name + config hash + codec version (what `evalkit profile`
measured), so leaderboards join them to results on (codec, codec_hash). Migration: 0002.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..profile.profile_row import Profile
from ..profile.resource_use import Cost
from .models import (
    RESULT_STATUSES,
    Base,
    Id,
    Json,
    UTCDateTime,
    one_of,
    reason_unless_ok,
    utcnow,
    value_exactly_when_ok,
)

__all__ = ["CodecProfile", "LossCurve", "PROFILE_KEY", "LOSS_CURVE_KEY"]

PROFILE_KEY = ("codec", "codec_hash", "codec_version")
LOSS_CURVE_KEY = PROFILE_KEY + ("loss_model", "loss_rate", "mean_burst", "seed", "metric", "metric_version")


class _CodecConfig:
    """Which codec configuration was measured; sort_order puts these first in CREATE TABLE."""

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True, sort_order=-1)
    codec: Mapped[str] = mapped_column(String(200), sort_order=-1)  # codec card name
    codec_hash: Mapped[str] = mapped_column(String(128), sort_order=-1)  # hash of the card's configuration
    codec_version: Mapped[str] = mapped_column(String(200), sort_order=-1)  # library + version (CodecInfo.version)


def _column(field: dataclasses.Field):
    """The column of one Profile field: its type from the field's (`X | None`: nullable), a string's length
    and a 64-bit count from the field's metadata."""
    kind, _, optional = str(field.type).partition(" | ")
    if kind == "dict":
        return mapped_column(Json, nullable=True)
    integer = BigInteger if field.metadata.get("bigint") else Integer
    sql = {"float": Float, "int": integer, "bool": Boolean}.get(kind)
    return mapped_column(sql if sql is not None else String(field.metadata["length"]), nullable=bool(optional))


def _columns() -> dict:
    """One column per field of Profile besides the key (_CodecConfig holds it), in the order of the
    migration's CREATE TABLE: Profile's own fields, the creation time, then Cost's fields."""
    cost = {field.name for field in dataclasses.fields(Cost)}
    fields = [field for field in dataclasses.fields(Profile) if field.name not in PROFILE_KEY]
    own = {field.name: _column(field) for field in fields if field.name not in cost}
    created = {"created_at": mapped_column(UTCDateTime(), default=utcnow, nullable=False)}
    return own | created | {field.name: _column(field) for field in fields if field.name in cost}


_ProfileColumns = type("_ProfileColumns", (), _columns())


class CodecProfile(_CodecConfig, _ProfileColumns, Base):  # type: ignore[valid-type,misc]  # columns built from Profile
    """Complexity, speed, memory and latency of one codec configuration (see evalkit.profile)."""

    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint(*PROFILE_KEY, name="uq_profiles_key"),)

    if TYPE_CHECKING:  # the columns come from _ProfileColumns; declared here for the type checker
        created_at: Mapped[datetime]


class LossCurve(_CodecConfig, Base):
    """One point of a quality-versus-packet-loss curve: a loss condition and its metric score."""

    __tablename__ = "loss_curves"
    __table_args__ = (
        UniqueConstraint(*LOSS_CURVE_KEY, name="uq_loss_curves_key"),
        one_of("status", RESULT_STATUSES),
        value_exactly_when_ok(),
        reason_unless_ok(),
    )

    loss_model: Mapped[str] = mapped_column(String(32))  # "none", "bernoulli", "gilbert"
    loss_rate: Mapped[float] = mapped_column(Float)  # target fraction of packets lost
    mean_burst: Mapped[float] = mapped_column(Float)  # expected run of consecutive losses (packets)
    seed: Mapped[int] = mapped_column(Integer)
    lost_fraction: Mapped[float] = mapped_column(Float)  # fraction actually dropped
    metric: Mapped[str] = mapped_column(String(100))
    metric_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    package: Mapped[str | None] = mapped_column(String(100))
    package_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
