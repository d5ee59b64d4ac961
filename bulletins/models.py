from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, BigIntPK, UTCDateTime


class Bulletin(Base):
    """An item of the content library: what may be broadcast once approved."""

    __tablename__ = "bulletins"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str] = mapped_column(String(64))
    # BCP 47: vi, or a minority language (ede, jra, km, hmn, ...): recorded then, not spoken.
    language: Mapped[str] = mapped_column(String(32))
    body: Mapped[str | None] = mapped_column(Text)
    media_sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"))
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"))
    stream_url: Mapped[str | None] = mapped_column(Text)  # a relay source, approved once
    # True when the audio is the body read by text-to-speech (re-spoken if the body changes).
    spoken: Mapped[bool] = mapped_column(Boolean, default=False)
    cls: Mapped[str] = mapped_column("class", String(16))  # the class its author intends
    # The area it belongs to: its author's; reviewers scoped above it see it.
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    author: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_note: Mapped[str | None] = mapped_column(String(500))
    # An emergency aired at once; the editorial board reviews it afterwards.
    aired_before_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # Spoken live (live/): its audio is the session's record, kept for review afterwards.
    aired_live: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_bulletins_status", "status"),
        Index("ix_bulletins_area_id", "area_id"),
    )


class BulletinEvent(Base):
    """Append-only: every step of a bulletin's life, who took it and when."""

    __tablename__ = "bulletin_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    bulletin_id: Mapped[str] = mapped_column(ForeignKey("bulletins.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(32))  # create, edit, submit, ..., broadcast
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_bulletin_events_bulletin_id", "bulletin_id"),)


class InboxItem(Base):
    """A bulletin sent down to one commune (Circular 39/2020): what arrived and what the
    commune did with it."""

    __tablename__ = "inbox_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    bulletin_id: Mapped[str] = mapped_column(ForeignKey("bulletins.id", ondelete="RESTRICT"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    cls: Mapped[str] = mapped_column("class", String(16))
    sender: Mapped[str] = mapped_column(String(100))
    sender_level: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # InboxStatus (bulletins/workflow.py); withdrawn by cap/airing.py
    status: Mapped[str] = mapped_column(String(16))
    handled_by: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(500))
    broadcast_id: Mapped[str | None] = mapped_column(ForeignKey("broadcasts.id"))

    __table_args__ = (Index("ix_inbox_items_area_id_status", "area_id", "status"),)
