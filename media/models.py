from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class MediaOriginal(Base):
    """An upload exactly as it arrived, kept for audit (who said what, in their words)."""

    __tablename__ = "media_originals"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    container: Mapped[str] = mapped_column(String(16))  # mp3 | wav | ogg | m4a | flac | webm
    duration_ms: Mapped[int] = mapped_column(Integer)
    loudness_lufs: Mapped[float] = mapped_column(Float)  # as measured before normalising
    original_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MediaFile(Base):
    """A file clusters download, by the sha256 of its bytes: one delivery rendition of an
    upload (per delivery profile), a text-to-speech result, or an e-board image."""

    __tablename__ = "media_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))  # mp3 | ogg | m4a | png | jpeg | webp
    content_type: Mapped[str] = mapped_column(String(64))
    duration_ms: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16), server_default="audio")  # audio | image
    # The delivery profile this rendition was made for (settings.delivery_profiles).
    profile: Mapped[str | None] = mapped_column(String(32))
    source_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("media_originals.sha256", ondelete="RESTRICT")
    )

    __table_args__ = (Index("ix_media_files_source_sha256_profile", "source_sha256", "profile"),)
