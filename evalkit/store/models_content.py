"""Tables of the content part of evalkit: phoneme events (hallucination candidates) with times.

One row per edit between the reference's and the decoded audio's phones, flagged or not, so
the app and reports can play the two snippets side by side. Keyed like results rows (run,
item, codec card + hash, metric version) plus the event's start. Migration: 0003.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, Id, utcnow

__all__ = ["ContentEvent", "CONTENT_EVENT_KEY"]

# Edits of one item never overlap, so their start times tell them apart.
CONTENT_EVENT_KEY = ("run_id", "item_id", "codec", "codec_hash", "metric_version", "start")


class ContentEvent(Base):
    """A place where the decoded phones differ from the reference's; `flagged` marks a hallucination."""

    __tablename__ = "content_events"
    __table_args__ = (
        UniqueConstraint(*CONTENT_EVENT_KEY, name="uq_content_events_key"),
        CheckConstraint('"end" >= start', name="span"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        Index(None, "run_id", "codec", "flagged"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(200), ForeignKey("runs.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(500))
    codec: Mapped[str] = mapped_column(String(200))  # codec card name
    codec_hash: Mapped[str] = mapped_column(String(128))  # hash of the card's configuration
    metric_version: Mapped[str] = mapped_column(String(64))  # of the "phoneme" metric
    start: Mapped[float] = mapped_column(Float)  # seconds from the item's start
    end: Mapped[float] = mapped_column(Float)
    ref_phones: Mapped[str] = mapped_column(String(500))  # space-separated ARPAbet; empty: an insertion
    deg_phones: Mapped[str] = mapped_column(String(500))  # empty: a deletion
    confidence: Mapped[float] = mapped_column(Float)  # 0-1 that the phone identity changed
    local_quality: Mapped[float] = mapped_column(Float)  # dB, clarity of the decoded audio there (non-intrusive)
    flagged: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
