from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class FirmwareImage(Base):
    """A released firmware image: its bytes sit in the media store (content-addressed),
    its manifest is signed, and a cluster installs nothing whose manifest it cannot
    verify or whose bytes do not match it."""

    __tablename__ = "firmware_images"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(64))  # None: every model
    signature: Mapped[str] = mapped_column(String(200))  # the manifest's `sig`
    notes: Mapped[str] = mapped_column(String(2000), default="")
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A second person approves a release before any rollout may use it.
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Rollout(Base):
    """One firmware version taken to a set of clusters in waves, at a bounded rate,
    stopped when too many installs fail (firmware/rollouts.py)."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firmware_version: Mapped[str] = mapped_column(ForeignKey("firmware_images.version"))
    # RolloutState (firmware/rollouts.py)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300), default="")
    waves: Mapped[int] = mapped_column(Integer)
    current_wave: Mapped[int] = mapped_column(Integer, default=1)
    per_minute: Mapped[int] = mapped_column(Integer)  # installs started per minute, at most
    abort_failure_pct: Mapped[int] = mapped_column(Integer)
    abort_min_finished: Mapped[int] = mapped_column(Integer)
    pause_between_waves: Mapped[bool] = mapped_column(Boolean, default=False)
    target_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_clusters: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Failures counted by the abort rule are those finished since this moment: resuming
    # an aborted rollout is a person's decision to try again, not to abort at once.
    counted_from: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RolloutCluster(Base):
    """One cluster's place in a rollout: its wave, and pending, sent, installing, done,
    failed, skipped (already on the version, or another model) or cancelled."""

    __tablename__ = "rollout_clusters"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    wave: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    # The operation that carried the command (health/operations.py): its answers and
    # expiry decide this cluster's outcome.
    operation_id: Mapped[str | None] = mapped_column(
        ForeignKey("operations.id", ondelete="SET NULL")
    )
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_rollout_clusters_rollout_cluster", "rollout_id", "cluster_id", unique=True),
        Index("ix_rollout_clusters_rollout_state", "rollout_id", "state"),
    )
