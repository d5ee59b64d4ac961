"""Fleet health: what heartbeats say, kept as the latest state and a sampled history;
clusters gone silent; the rollup a technician reads first. Services flush, never commit."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from areas.models import Area
from core.settings import Settings
from devices.models import Cluster
from devices.service import ClusterNotFound
from health import alarms, repository
from health.models import ClusterHealth
from health.schemas import AreaHealth, ClusterHealthRead, Sample, Telemetry
from wire.protocol import Heartbeat

RETENTION_BATCH = 10_000  # samples deleted per run: a short write, however far behind
# What a technician wants in the history whenever it changes, not only once per interval.
NOTABLE = ("power", "amp_on", "speaker_faults", "relay_trip")


@dataclass(frozen=True, slots=True)
class Observed:
    cluster_id: int
    heartbeat: Heartbeat
    received_at: datetime


def _latest_values(seen: Observed) -> dict[str, Any]:
    hb = seen.heartbeat
    return {
        "cluster_id": seen.cluster_id,
        "received_at": seen.received_at,
        "device_at": hb.at,
        "clock_offset_s": round((hb.at - seen.received_at).total_seconds(), 3),
        "seq": hb.seq,
        "playing": hb.playing,
        "volume": hb.volume,
        "rssi": hb.rssi,
        "link_quality": hb.link_quality,
        "supply_v": hb.supply_v,
        "power": hb.power,
        "amp_on": hb.amp_on,
        "amp_temp_c": hb.amp_temp_c,
        "speakers": hb.speakers,
        "speaker_faults": sorted(hb.speaker_faults),
        "relay_trip": hb.relay_trip,
        "uptime_s": hb.uptime_s,
        "firmware": hb.fw,
        "latitude": hb.lat,
        "longitude": hb.lon,
    }


def _sample(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster_id": values["cluster_id"],
        "at": values["received_at"],
        "volume": values["volume"],
        "rssi": values["rssi"],
        "supply_v": values["supply_v"],
        "power": values["power"],
        "amp_on": values["amp_on"],
        "amp_temp_c": values["amp_temp_c"],
        "speaker_faults": values["speaker_faults"],
        "relay_trip": values["relay_trip"],
        "clock_offset_s": values["clock_offset_s"],
        "playing": values["playing"] is not None,
    }


async def record_heartbeats(
    session: AsyncSession, observed: list[Observed], *, settings: Settings
) -> None:
    """The latest heartbeat of each cluster in the batch becomes its state; a history
    sample is kept once per `telemetry_sample_s`, and at once when something notable
    changed (mains lost, a speaker line open, the amplifier off, the relay tripped)."""
    # The last to arrive is the newest: one device's messages arrive in order, and its own
    # clock cannot be trusted to order them (a drifting clock is one of the alarms).
    newest = {seen.cluster_id: seen for seen in observed}
    if not newest:
        return
    known = await repository.latest(session, list(newest))
    interval = timedelta(seconds=settings.telemetry_sample_s)
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for cluster_id, seen in sorted(newest.items()):
        values = _latest_values(seen)
        before = known.get(cluster_id)
        due = (
            before is None
            or before.sampled_at is None
            or seen.received_at - before.sampled_at >= interval
            or any(getattr(before, k) != values[k] for k in NOTABLE)
        )
        values["sampled_at"] = seen.received_at if due else before.sampled_at  # type: ignore[union-attr]
        if due:
            samples.append(_sample(values))
        (new if before is None else changed).append(values)
    await repository.write_latest(session, new=new, changed=changed)
    await repository.add_samples(session, samples)


async def mark_silent_offline(
    session: AsyncSession, *, now: datetime, settings: Settings
) -> list[int]:
    """Clusters whose heartbeats stopped while the broker still holds their link (a hung
    device, a half-open 4G connection): offline after `offline_after_missed` intervals
    without a word, so one late heartbeat is not an outage."""
    silence = timedelta(seconds=settings.heartbeat_s * settings.offline_after_missed)
    return await repository.mark_silent_offline(session, silent_since=now - silence)


async def forget_old_samples(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    cutoff = now - timedelta(hours=settings.telemetry_retention_h)
    return await repository.forget_samples_before(session, cutoff, RETENTION_BATCH)


def is_faulty(health: ClusterHealth | None, settings: Settings) -> bool:
    """Would not sound as it should: a speaker line open or shorted, the protection relay
    tripped, the amplifier off or overheating."""
    if health is None:
        return False
    return _faulty(
        health.speaker_faults, health.relay_trip, health.amp_on, health.amp_temp_c, settings
    )


def _faulty(
    faults: list[int] | None,
    relay: str | None,
    amp_on: bool | None,
    amp_temp_c: float | None,
    settings: Settings,
) -> bool:
    return bool(
        faults
        or relay
        or amp_on is False
        or (amp_temp_c is not None and amp_temp_c >= settings.amp_overheat_c)
    )


def _telemetry(health: ClusterHealth | None) -> Telemetry | None:
    if health is None:
        return None
    return Telemetry.model_validate(health, from_attributes=True)


async def cluster_health(
    *, session: AsyncSession, settings: Settings, code: str, history: int
) -> ClusterHealthRead:
    # One statement: the link state and the telemetry that came with it are written in one
    # transaction, and two SELECTs could each see a different side of it (read committed).
    row = (
        await session.execute(
            select(Cluster, ClusterHealth)
            .outerjoin(ClusterHealth, ClusterHealth.cluster_id == Cluster.id)
            .where(Cluster.code == code)
        )
    ).first()
    if row is None:
        raise ClusterNotFound(code)
    cluster, health = row
    samples = await repository.history(session, cluster.id, history)
    return ClusterHealthRead(
        cluster=cluster.code,
        name=cluster.name,
        online=cluster.online,
        last_seen_at=cluster.last_seen_at,
        offline_since=cluster.offline_since,
        faulty=is_faulty(health, settings),
        telemetry=_telemetry(health),
        alarms=list(
            await alarms.listing(
                session, area_code=None, cluster_code=code, open_only=True, kind=None, limit=100
            )
        ),
        history=[Sample.model_validate(s, from_attributes=True) for s in samples],
    )


async def _clusters_under(
    session: AsyncSession, area: Area
) -> list[tuple[Cluster, str, ClusterHealth | None]]:
    rows = await session.execute(
        select(Cluster, Area.path, ClusterHealth)
        .join(Area, Cluster.area_id == Area.id)
        .outerjoin(ClusterHealth, ClusterHealth.cluster_id == Cluster.id)
        .where(Area.path.startswith(area.path, autoescape=True))
        .order_by(Cluster.code)
    )
    return [(c, path, h) for c, path, h in rows.all()]


async def rollup(*, session: AsyncSession, settings: Settings, area_code: str) -> list[AreaHealth]:
    """Per child area of `area_code` (and the area itself first): clusters in total,
    online, offline, faulty, on battery; the children worst first (the largest share not
    working, then the most offline)."""
    area = await area_service.get(session=session, code=area_code)
    children = (
        await session.scalars(select(Area).where(Area.parent_id == area.id).order_by(Area.code))
    ).all()
    totals = {area.path: AreaHealth(area_code=area.code, name=area.name)}
    for child in children:
        totals[child.path] = AreaHealth(area_code=child.code, name=child.name)
    child_of = {child.path.strip("/").split("/")[-1]: child.path for child in children}
    depth = len(area.path.strip("/").split("/"))  # the child's code sits at this index
    # Counted by the database per area (a hundred rows, not ten thousand): building a row
    # per cluster made the province's rollup take 1.2 s under load (docs/benchmarks.md).
    faulty = or_(
        cast(ClusterHealth.speaker_faults, String) != "[]",
        ClusterHealth.relay_trip.is_not(None),
        ClusterHealth.amp_on.is_(False),
        ClusterHealth.amp_temp_c >= settings.amp_overheat_c,
    )
    rows = await session.execute(
        select(
            Area.path,
            func.count(),
            func.sum(case((Cluster.online, 1), else_=0)),
            func.sum(case((faulty, 1), else_=0)),
            func.sum(case((and_(Cluster.online, ClusterHealth.power == "battery"), 1), else_=0)),
            func.sum(case((or_(Cluster.online.is_(False), faulty), 1), else_=0)),
        )
        .join(Area, Cluster.area_id == Area.id)
        .outerjoin(ClusterHealth, ClusterHealth.cluster_id == Cluster.id)
        .where(Area.path.startswith(area.path, autoescape=True))
        .group_by(Area.path)
    )
    own = totals[area.path]
    for path, *counts in rows.all():
        numbers = [int(n or 0) for n in counts]
        own.add_counts(*numbers)
        parts = path.strip("/").split("/")
        below = child_of.get(parts[depth]) if len(parts) > depth else None
        if below is not None:
            totals[below].add_counts(*numbers)
    own, rest = totals.pop(area.path), list(totals.values())
    rest.sort(key=lambda a: (-a.not_working_share, -a.offline, a.area_code))
    return [own, *rest]


CSV_COLUMNS = (
    "code",
    "name",
    "area_path",
    "online",
    "last_seen_at",
    "offline_since",
    "faulty",
    "power",
    "supply_v",
    "amp_on",
    "amp_temp_c",
    "speaker_faults",
    "relay_trip",
    "rssi",
    "volume",
    "firmware",
    "clock_offset_s",
)


async def export_csv(*, session: AsyncSession, settings: Settings, area_code: str) -> str:
    """Every cluster under the area, one row each, for the district office's spreadsheet."""
    area = await area_service.get(session=session, code=area_code)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for cluster, path, health in await _clusters_under(session, area):
        writer.writerow(
            [
                cluster.code,
                cluster.name,
                path.strip("/"),
                cluster.online,
                cluster.last_seen_at.isoformat() if cluster.last_seen_at else "",
                cluster.offline_since.isoformat() if cluster.offline_since else "",
                is_faulty(health, settings),
                *(
                    (
                        health.power,
                        health.supply_v,
                        health.amp_on,
                        health.amp_temp_c,
                        " ".join(map(str, health.speaker_faults)),
                        health.relay_trip or "",
                        health.rssi,
                        health.volume,
                        health.firmware,
                        health.clock_offset_s,
                    )
                    if health is not None
                    else [""] * 10
                ),
            ]
        )
    return out.getvalue()


async def map_points(
    *, session: AsyncSession, settings: Settings, area_code: str
) -> list[dict[str, Any]]:
    """Every cluster under the area with a position, and its state for the map: offline,
    faulty (online but would not sound as it should) or working."""
    area = await area_service.get(session=session, code=area_code)
    points = []
    for cluster, _, health in await _clusters_under(session, area):
        if cluster.latitude is None or cluster.longitude is None:
            continue
        state = (
            "offline" if not cluster.online else "faulty" if is_faulty(health, settings) else "ok"
        )
        points.append(
            {
                "code": cluster.code,
                "name": cluster.name,
                "lat": cluster.latitude,
                "lon": cluster.longitude,
                "state": state,
            }
        )
    return points
