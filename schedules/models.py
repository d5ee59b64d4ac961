from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, BigIntPK, UTCDateTime


class Schedule(Base):
    """When an approved bulletin airs, written in local wall-clock time (recurrence.py)."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    bulletin_id: Mapped[str] = mapped_column(ForeignKey("bulletins.id", ondelete="RESTRICT"))
    cls: Mapped[str] = mapped_column("class", String(16))  # normal | priority
    level: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    starts_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    rule: Mapped[str | None] = mapped_column(Text)  # RFC 5545 RRULE value; None = once
    exdates_local: Mapped[list[str]] = mapped_column(JSON)  # ISO wall-clock times left out
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    plays: Mapped[int] = mapped_column(Integer, default=1)
    gap_s: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[int | None] = mapped_column(Integer)  # a relay's window
    target_areas: Mapped[list[str]] = mapped_column(JSON)
    target_clusters: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # ScheduleStatus
    # The next play to fire (UTC); the scheduler's only index into the table.
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_schedules_status_next_fire_at", "status", "next_fire_at"),)


class ScheduleFiring(Base):
    """One play of a schedule, recorded once: the unique slot is what makes a restarted or
    duplicated scheduler unable to fire it twice."""

    __tablename__ = "schedule_firings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="RESTRICT"))
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))  # SlotOutcome
    reason: Mapped[str | None] = mapped_column(String(300))
    broadcast_id: Mapped[str | None] = mapped_column(ForeignKey("broadcasts.id"))

    __table_args__ = (UniqueConstraint("schedule_id", "slot_at"),)


class LocalPlay(Base):
    """A play a cluster made from its stored schedule (its link was down), as it reported
    it when the link came back: the record of what it played, even if the broadcast for
    that slot had expired by then (or was never fired)."""

    __tablename__ = "local_plays"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="RESTRICT"))
    item: Mapped[str] = mapped_column(String(80))
    schedule_id: Mapped[str | None] = mapped_column(String(36))
    slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the cluster's clock
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    broadcast_id: Mapped[str | None] = mapped_column(ForeignKey("broadcasts.id"))

    __table_args__ = (UniqueConstraint("cluster_id", "item"),)
