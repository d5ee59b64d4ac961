from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class Cluster(Base):
    """A loudspeaker cluster or a public e-board, registered under one area."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # speaker_cluster | eboard
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    speakers: Mapped[int] = mapped_column(Integer, default=0)
    firmware: Mapped[str | None] = mapped_column(String(64))
    # Hardware model: picks the audio rendition it plays (settings.model_profiles).
    model: Mapped[str | None] = mapped_column(String(64))
    installed_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Live link state, written by the MQTT status/heartbeat handlers.
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    offline_since: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Its schedule on the device: the version we last pushed (retained), a digest of its
    # content (a new version only when it changes), and the version the cluster reports.
    schedule_version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    schedule_digest: Mapped[str | None] = mapped_column(String(64))
    schedule_pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    schedule_version_held: Mapped[int | None] = mapped_column(BigInteger)

    # Its broker password, as the broker's password file holds it (PBKDF2, mosquitto's
    # format); None: it has no credentials (never issued, or revoked) and cannot connect.
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(200))
    # Moving between areas (a reorganisation): the area path whose topics the device still
    # listens on, until it confirms its new areas (set_areas). Meanwhile every broadcast to
    # an area above it also names it on its own topic, so it never misses one.
    moving_from: Mapped[str | None] = mapped_column(String(1000), index=True)

    __table_args__ = (Index("ix_clusters_area_id", "area_id"),)
