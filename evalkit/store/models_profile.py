"""Tables of the profile part of evalkit: codec profiles and quality-versus-loss curves.

Both are keyed by codec card name + config hash + codec version (what `evalkit profile`
measured), so leaderboards join them to results on (codec, codec_hash). Migration: 0002.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..profile.resource_use import Cost
from .models import RESULT_STATUSES, Base, Id, one_of, reason_unless_ok, utcnow, value_exactly_when_ok

__all__ = ["CodecProfile", "LossCurve", "PROFILE_KEY", "LOSS_CURVE_KEY"]

PROFILE_KEY = ("codec", "codec_hash", "codec_version")
LOSS_CURVE_KEY = PROFILE_KEY + ("loss_model", "loss_rate", "mean_burst", "seed", "metric", "metric_version")


class _CodecConfig:
    """Which codec configuration was measured; sort_order puts these first in CREATE TABLE."""

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True, sort_order=-1)
    codec: Mapped[str] = mapped_column(String(200), sort_order=-1)  # codec card name
    codec_hash: Mapped[str] = mapped_column(String(128), sort_order=-1)  # hash of the card's configuration
    codec_version: Mapped[str] = mapped_column(String(200), sort_order=-1)  # library + version (CodecInfo.version)


# One NOT NULL column per field of the cost measurement: its dataclass is the one list of them.
_CostColumns = type(
    "_CostColumns",
    (),
    {
        field.name: mapped_column({"float": Float, "int": Integer}[field.type], nullable=False)
        for field in dataclasses.fields(Cost)
    },
)


class CodecProfile(_CodecConfig, _CostColumns, Base):
    """Complexity, speed, memory and latency of one codec configuration (see evalkit.profile)."""

    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint(*PROFILE_KEY, name="uq_profiles_key"),)

    backend: Mapped[str] = mapped_column(String(100))
    family: Mapped[str] = mapped_column(String(100))
    sample_rate: Mapped[int] = mapped_column(Integer)
    nominal_bitrate: Mapped[float | None] = mapped_column(Float)
    params_encoder: Mapped[int | None] = mapped_column(BigInteger)  # neural codecs only
    params_decoder: Mapped[int | None] = mapped_column(BigInteger)
    macs_encoder_per_s: Mapped[float | None] = mapped_column(Float)  # multiply-accumulates per second of audio
    macs_decoder_per_s: Mapped[float | None] = mapped_column(Float)
    frame_samples: Mapped[int] = mapped_column(Integer)
    declared_delay: Mapped[int] = mapped_column(Integer)  # lookahead, samples at the codec rate
    measured_delay: Mapped[int | None] = mapped_column(Integer)
    declared_latency_ms: Mapped[float] = mapped_column(Float)  # frame + lookahead
    measured_latency_ms: Mapped[float | None] = mapped_column(Float)  # frame + measured delay
    latency_ok: Mapped[bool | None] = mapped_column(Boolean)  # None: output silent, not measurable
    streaming: Mapped[bool] = mapped_column(Boolean)
    concealment: Mapped[str] = mapped_column(String(32))
    packages: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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
