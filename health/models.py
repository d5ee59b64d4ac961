from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class ClusterHealth(Base):
    """The latest telemetry of one cluster: one row each, rewritten by its heartbeats."""

    __tablename__ = "cluster_health"

    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    device_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Device clock minus ours, at receipt (positive: the device runs ahead). Includes the
    # link's delay, a fraction of a second: drift alarms are for seconds and more.
    clock_offset_s: Mapped[float] = mapped_column(Float)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    playing: Mapped[str | None] = mapped_column(String(80))
    volume: Mapped[int | None] = mapped_column(Integer)
    rssi: Mapped[int | None] = mapped_column(Integer)
    link_quality: Mapped[int | None] = mapped_column(Integer)
    supply_v: Mapped[float | None] = mapped_column(Float)
    power: Mapped[str | None] = mapped_column(String(16))  # mains | battery
    amp_on: Mapped[bool | None] = mapped_column(Boolean)
    amp_temp_c: Mapped[float | None] = mapped_column(Float)
    speakers: Mapped[int | None] = mapped_column(Integer)
    speaker_faults: Mapped[list[int]] = mapped_column(JSON, default=list)
    relay_trip: Mapped[str | None] = mapped_column(String(16))
    uptime_s: Mapped[int | None] = mapped_column(BigInteger)
    firmware: Mapped[str | None] = mapped_column(String(64))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # When the last history sample was kept (TelemetrySample): history is sampled, not
    # every heartbeat, so a country's minute-by-minute heartbeats stay affordable.
    sampled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TelemetrySample(Base):
    """A cluster's telemetry history: one row per sampling interval, and one whenever what
    a technician cares about changes (power source, amplifier, faults, relay)."""

    __tablename__ = "telemetry_samples"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # received
    volume: Mapped[int | None] = mapped_column(Integer)
    rssi: Mapped[int | None] = mapped_column(Integer)
    supply_v: Mapped[float | None] = mapped_column(Float)
    power: Mapped[str | None] = mapped_column(String(16))
    amp_on: Mapped[bool | None] = mapped_column(Boolean)
    amp_temp_c: Mapped[float | None] = mapped_column(Float)
    speaker_faults: Mapped[list[int]] = mapped_column(JSON, default=list)
    relay_trip: Mapped[str | None] = mapped_column(String(16))
    clock_offset_s: Mapped[float | None] = mapped_column(Float)
    playing: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_telemetry_samples_cluster_at", "cluster_id", "at"),
        Index("ix_telemetry_samples_at", "at"),  # retention deletes by age
    )


class Alarm(Base):
    """One episode of one condition on one cluster: raised when it starts, acknowledged by
    a person, cleared when it ends. A new episode is a new row, so a cluster on battery
    for a week raises one alarm, not ten thousand."""

    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300), default="")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # At most one open episode per cluster and kind, whatever two evaluators race.
        Index(
            "uq_alarms_open",
            "cluster_id",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_alarms_raised_at", "raised_at"),
    )


class Operation(Base):
    """A technician's remote command to one cluster or a whole area (set the volume,
    switch the amplifier, reboot, play a test tone, tune the FM receiver, report now):
    one signed command, a result per cluster (OperationResult)."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "op-{uuid}"
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The clip a self-test fetches and checks (no sound): the whole path an emergency takes.
    media_sha256: Mapped[str | None] = mapped_column(ForeignKey("media_files.sha256"))
    target_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_clusters: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OperationResult(Base):
    """One cluster's answer to an operation: sent, accepted, done, failed, rejected,
    expired (never answered before the operation expired)."""

    __tablename__ = "operation_results"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())  # while `sent`: last sent
    # Sends so far: a cluster that has not answered is sent the command again, backing off
    # (a command published while the broker was down, or lost on the way).
    attempts: Mapped[int] = mapped_column(Integer, server_default="1", default=1)

    __table_args__ = (
        Index("uq_operation_results_op_cluster", "operation_id", "cluster_id", unique=True),
        # The jobs that re-send and expire look for the few results still open, every
        # tick, among every result ever kept.
        Index("ix_operation_results_state", "state"),
    )
