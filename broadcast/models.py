from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, BigIntPK, UTCDateTime


class Broadcast(Base):
    __tablename__ = "broadcasts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    cls: Mapped[str] = mapped_column("class", String(16))
    level: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # BroadcastStatus
    media_sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"))
    # The rendition the play leads with (its `media`): media_sha256 itself, or for an
    # emergency its compact speech rendition (broadcast.service.aired_rendition). The
    # clusters that heard it hold this one, so a repeat and a re-send name it. No foreign
    # key: adding one would rebuild the table on SQLite; both are renditions of one upload.
    aired_sha256: Mapped[str | None] = mapped_column(String(64))
    stream_url: Mapped[str | None] = mapped_column(Text)
    # A relayed stream plays from start to end (absent: at once, and until expiry).
    stream_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stream_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The bulletin's text: shown on e-boards, and read aloud when there was no recording.
    body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(32), server_default="vi")
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"))
    display_s: Mapped[int | None] = mapped_column(Integer)  # on e-boards
    bulletin_id: Mapped[str | None] = mapped_column(ForeignKey("bulletins.id"))
    sent_by: Mapped[str | None] = mapped_column(String(100))
    # The schedule item it plays ("{schedule}@{slot}"), which the cluster also holds in its
    # stored schedule: it never plays the same item twice, from either path.
    schedule_item: Mapped[str | None] = mapped_column(String(80))
    repeat: Mapped[int] = mapped_column(Integer, default=1)
    # An exercise or a test (CAP status Exercise/Test): marked as such on the record, on
    # e-boards and in the spoken text, so nobody takes it for the real thing.
    drill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A person speaking now (live/): the stream is this control plane's own, its URL signed
    # per target like media, and its clean end is the end of the play.
    live: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    target_areas: Mapped[list[str]] = mapped_column(JSON)
    target_clusters: Mapped[list[str]] = mapped_column(JSON)
    command_id: Mapped[str] = mapped_column(String(36))
    cancel_command_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_broadcasts_status_expires_at", "status", "expires_at"),
        # broadcast.repository.aired_before, on an emergency's path and every scheduled play.
        Index("ix_broadcasts_aired_sha256", "aired_sha256"),
    )


class Delivery(Base):
    """One broadcast to one cluster, moved through broadcast.states by acknowledgements."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    broadcast_id: Mapped[str] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    # RESTRICT: a cluster or area with broadcast history cannot be deleted; the broadcast
    # log is reported to the national level and must survive reorganisations.
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="RESTRICT"))
    # The cluster's area when the broadcast was sent: rollups stay true after a move.
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    playing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    played_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(300))
    # When the cluster confirmed it stopped after a cancel (it may have been mid-playback).
    stop_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("broadcast_id", "cluster_id"),
        Index("ix_deliveries_broadcast_id_state", "broadcast_id", "state"),
        Index("ix_deliveries_next_attempt_at", "next_attempt_at"),
        Index("ix_deliveries_cluster_id", "cluster_id"),
    )


class DeliveryEvent(Base):
    """Append-only record of every applied transition: who confirmed what, when."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the control plane learnt it
    device_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the cluster's clock
    reason: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (Index("ix_delivery_events_delivery_id", "delivery_id"),)
