from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class LiveSession(Base):
    """The record of a live broadcast beyond its deliveries: when the voice went out, how
    it ended and why, and what was kept of it."""

    __tablename__ = "live_sessions"

    broadcast_id: Mapped[str] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why it ended: the officer finished, the officer's link was lost past the grace, it
    # was cancelled, the server stopped.
    end_reason: Mapped[str | None] = mapped_column(String(300))
    spoken_ms: Mapped[int | None] = mapped_column(Integer)  # the officer's audio received
    recorded_ms: Mapped[int | None] = mapped_column(Integer)  # what the clusters heard
    gaps_ms: Mapped[int | None] = mapped_column(Integer)  # silence carried for a lost link
    recording_sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"))
    recording_problem: Mapped[str | None] = mapped_column(String(300))
