"""SQLAlchemy 2 ORM models of the results database: runs, codec round trips, metric results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Run",
    "Roundtrip",
    "Result",
    "utcnow",
    "one_of",
    "reason_unless_ok",
    "value_exactly_when_ok",
    "RESULT_KEY",
    "ROUNDTRIP_KEY",
    "RESULT_STATUSES",
    "ROUNDTRIP_STATUSES",
]

ROUNDTRIP_KEY = ("run_id", "item_id", "codec", "codec_hash")
RESULT_KEY = ROUNDTRIP_KEY + ("metric", "metric_version")
ROUNDTRIP_STATUSES = ("ok", "failed")
RESULT_STATUSES = ("ok", "failed", "skipped")

# Named constraints so that Alembic migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only
Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """CHECK that `column` holds one of `values` (named after the column)."""
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=column)


def reason_unless_ok() -> CheckConstraint:
    """CHECK that every row whose status is not ok says why."""
    return CheckConstraint("status = 'ok' OR (reason IS NOT NULL AND reason <> '')", name="reason")


def value_exactly_when_ok() -> CheckConstraint:
    """CHECK that a failure is data, never a made-up number: a value exactly when status is ok."""
    return CheckConstraint("(status = 'ok' AND value IS NOT NULL) OR (status <> 'ok' AND value IS NULL)", name="value")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        return value if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with named constraints and backend-neutral JSON and UTC datetime types."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: Json}
    if TYPE_CHECKING:  # every model here maps one Table (SQLAlchemy types it as any FromClause)
        __table__: ClassVar[Table]


class _CodecItem:
    """Columns shared by round trips and results: which item, through which codec configuration."""

    # sort_order puts these first in CREATE TABLE, ahead of the subclass columns.
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True, sort_order=-1)
    run_id: Mapped[str] = mapped_column(String(200), ForeignKey("runs.id", ondelete="CASCADE"), sort_order=-1)
    item_id: Mapped[str] = mapped_column(String(500), sort_order=-1)
    codec: Mapped[str] = mapped_column(String(200), sort_order=-1)  # codec card name
    codec_hash: Mapped[str] = mapped_column(String(128), sort_order=-1)  # hash of the card's configuration


class Run(Base):
    """One experiment; `id` is the name the user chose for it."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    experiment: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    evalkit_version: Mapped[str] = mapped_column(String(64))
    # {key: {"text", "items"}}: what a person should know about the run's numbers (rates, bandwidth, matching)
    warnings: Mapped[dict[str, Any] | None]


class Roundtrip(_CodecItem, Base):
    """One item through one codec configuration: measured bitrate, delay and timing."""

    __tablename__ = "roundtrips"
    __table_args__ = (
        UniqueConstraint(*ROUNDTRIP_KEY, name="uq_roundtrips_key"),
        one_of("status", ROUNDTRIP_STATUSES),
        reason_unless_ok(),
    )

    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    bitrate: Mapped[float | None] = mapped_column(Float)  # payload bit/s
    total_bitrate: Mapped[float | None] = mapped_column(Float)  # bit/s including the container
    duration: Mapped[float | None] = mapped_column(Float)  # seconds of input audio
    declared_delay: Mapped[int | None] = mapped_column(Integer)  # samples at the codec rate
    measured_delay: Mapped[int | None] = mapped_column(Integer)
    delay_tolerance: Mapped[int | None] = mapped_column(Integer)  # samples the two may differ by
    encode_seconds: Mapped[float | None] = mapped_column(Float)
    decode_seconds: Mapped[float | None] = mapped_column(Float)
    cache_key: Mapped[str | None] = mapped_column(String(128))  # content address of the decoded audio
    lag: Mapped[int | None] = mapped_column(Integer)  # samples (item rate) the decoded audio lags (estimated)
    length_change: Mapped[int | None] = mapped_column(Integer)  # decoded minus item frames, before alignment
    codec_version: Mapped[str | None] = mapped_column(String(64))
    packages: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Result(_CodecItem, Base):
    """One metric on one item through one codec: a value, or the reason there is none."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint(*RESULT_KEY, name="uq_results_key"),
        one_of("status", RESULT_STATUSES),
        value_exactly_when_ok(),
        reason_unless_ok(),
        Index(None, "run_id", "codec", "metric"),
        Index(None, "codec", "metric"),
    )

    metric: Mapped[str] = mapped_column(String(100))
    metric_version: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    native_rate: Mapped[int | None] = mapped_column(Integer)  # rate of the codec output
    metric_rate: Mapped[int | None] = mapped_column(Integer)  # rate the metric was computed at
    package: Mapped[str | None] = mapped_column(String(100))
    package_version: Mapped[str | None] = mapped_column(String(64))
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    lag: Mapped[int | None] = mapped_column(Integer)  # samples at native_rate the decoded audio lags (estimated)
    length_change: Mapped[int | None] = mapped_column(Integer)  # decoded minus reference frames, before alignment
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
