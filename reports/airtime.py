"""Broadcasts and airtime by area and period, with the share of clusters working now.

Airtime is what the clusters actually played: for every delivery that ended `played`,
its clip's length times its repeats (relayed streams are counted by the time their
relay was on air). Figures come from the delivery records, so they are what the
clusters confirmed, not what was sent.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from areas import service as area_service
from areas.models import Area, AreaVersion
from broadcast.models import Broadcast, Delivery
from broadcast.states import DeliveryState
from core.settings import Settings
from devices.models import Cluster
from health import service as health_service
from media.models import MediaFile


class Units(StrEnum):
    """Which units a period's figures are counted in, across a reorganisation."""

    # As they were when the broadcast went out: the record (June 2025 on old Bình
    # Phước's districts).
    THEN = "then"
    # Today's units: each play counted where the cluster that played it is now, so old
    # communes roll up into their successors (June beside July, ward by ward).
    TODAY = "today"


UnitsQuery = Annotated[
    Units,
    Query(
        description="then: the units as they were when each broadcast went out (default); "
        "today: old communes rolled up into today's units, each play where its cluster is now"
    ),
]


def path_at(area_id: Any, at: Any) -> ColumnElement[str]:
    """The path the area `area_id` had at the instant `at` (both SQL expressions of the
    enclosing query): a unit that continues under its code after a reorganisation
    moved, and its version (reorganisation/) says where it stood before."""
    version, area = aliased(AreaVersion), aliased(Area)
    return func.coalesce(
        select(version.path)
        .where(version.area_id == area_id, version.ended_at > at)
        .order_by(version.ended_at)
        .limit(1)
        .scalar_subquery(),
        select(area.path).where(area.id == area_id).scalar_subquery(),
    )


def delivery_path(units: Units) -> ColumnElement[str]:
    """The path a delivery is counted under; the enclosing query holds `Delivery` and
    its `Broadcast`."""
    if units is Units.TODAY:
        area, cluster = aliased(Area), aliased(Cluster)
        return (
            select(area.path)
            .join(cluster, cluster.area_id == area.id)
            .where(cluster.id == Delivery.cluster_id)
            .scalar_subquery()
        )
    return path_at(Delivery.area_id, Broadcast.created_at)


class AreaAirtime(BaseModel):
    area_code: str
    name: str
    broadcasts: int = 0
    emergencies: int = 0
    plays: int = 0  # deliveries that ended played
    airtime_s: int = 0  # seconds of sound from all its clusters together
    clusters: int = 0
    working_share: float = 0.0  # online and not faulty, now


CSV_COLUMNS = (
    "area_code",
    "name",
    "broadcasts",
    "emergencies",
    "plays",
    "airtime_s",
    "clusters",
    "working_share",
)


async def by_area(
    *,
    session: AsyncSession,
    settings: Settings,
    area_code: str,
    since: datetime,
    until: datetime,
    units: Units = Units.THEN,
) -> list[AreaAirtime]:
    """The area itself first, then each child area (by code)."""
    area = await area_service.get(session=session, code=area_code)
    health = await health_service.rollup(session=session, settings=settings, area_code=area_code)
    rows = {h.area_code: AreaAirtime(area_code=h.area_code, name=h.name) for h in health}
    for h in health:
        rows[h.area_code].clusters = h.total
        rows[h.area_code].working_share = round(1 - h.not_working_share, 4) if h.total else 0.0
    depth = len(area.path.strip("/").split("/"))  # a child's code sits at this index
    query = played_per_broadcast(area.path, since, until, Area.path, Broadcast.cls, units=units)
    seen: dict[str, set[str]] = defaultdict(set)
    urgent: dict[str, set[str]] = defaultdict(set)
    for path, cls, broadcast_id, plays, airtime in (await session.execute(query)).all():
        parts = path.strip("/").split("/")
        for code in {area.code, parts[depth] if len(parts) > depth else area.code}:
            row = rows.get(code)
            if row is None:
                continue
            seen[code].add(broadcast_id)
            if cls == "emergency":
                urgent[code].add(broadcast_id)
            row.plays += int(plays or 0)
            row.airtime_s += round(float(airtime or 0))
    for code, row in rows.items():
        row.broadcasts, row.emergencies = len(seen[code]), len(urgent[code])
    return list(rows.values())


def played_per_broadcast(
    path: str, since: datetime, until: datetime, *by: Any, units: Units = Units.THEN
) -> Select[Any]:
    """For each broadcast sent in [since, until) to clusters under `path`, and each value
    of the `by` columns (`Area.path` meaning the path counted under, per `units`): (*by,
    broadcast id, deliveries that ended played, their seconds of sound). The one
    definition of airtime every report counts with."""
    played = Delivery.state == DeliveryState.PLAYED
    seconds = func.coalesce(MediaFile.duration_ms, 0) * Broadcast.repeat / 1000.0
    counted = delivery_path(units)
    by = tuple(counted if column is Area.path else column for column in by)
    return (
        select(
            *by,
            Delivery.broadcast_id,
            func.sum(case((played, 1), else_=0)),
            func.sum(case((played, seconds), else_=0)),
        )
        .select_from(Delivery)
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .outerjoin(MediaFile, MediaFile.sha256 == Broadcast.media_sha256)
        .where(
            counted.startswith(path, autoescape=True),
            Broadcast.created_at >= since,
            Broadcast.created_at < until,
        )
        .group_by(*by, Delivery.broadcast_id)
    )


def to_csv(rows: list[AreaAirtime]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, c) for c in CSV_COLUMNS])
    return out.getvalue()
