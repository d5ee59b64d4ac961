"""Alarms: each condition a technician must act on, raised once per episode, acknowledged
by a person, cleared when the condition ends (docs/protocol.md section 3 has the data).

The evaluation is a diff, run every few seconds over the whole fleet from the latest
state: what holds now against what is open. So a condition seen in ten thousand
heartbeats is one alarm, and it clears by itself when the cluster recovers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from areas.models import Area
from broadcast.models import Delivery
from core.errors import NotFound
from core.settings import Settings
from devices.models import Cluster
from health.models import Alarm, ClusterHealth
from health.schemas import AlarmRead
from schedules.models import Schedule
from wire.protocol import LOCAL_PLAY_PREFIX, parse_item

# Alarms wait while a broadcast's answers are still to be written (reading the whole fleet
# takes 0.15 s of the event loop at 10,000 clusters, and an emergency's confirmations come
# first), but never longer than this past their time.
DEFER_MAX_S = 30.0


def due(*, since_last_s: float, interval_s: float, answers_unread: bool) -> bool:
    """Whether the fleet's alarms are to be evaluated now."""
    if since_last_s < interval_s:
        return False
    return not answers_unread or since_last_s >= interval_s + DEFER_MAX_S


class AlarmKind(StrEnum):
    OFFLINE = "offline"  # too long: a short drop on 4G is not an alarm
    ON_BATTERY = "on_battery"  # mains lost: the DC backup runs down
    SPEAKER_LINE = "speaker_line"  # a line open or shorted: that horn is silent
    RELAY_TRIP = "relay_trip"  # protection relay tripped: the amplifier has no supply
    AMP_OVERHEAT = "amp_overheat"
    CLOCK_DRIFT = "clock_drift"  # the stored schedule would play at the wrong time
    SCHEDULE_STALE = "schedule_stale"  # it does not hold the schedule we pushed
    OFF_SCHEDULE = "off_schedule"  # playing something we never sent it


class AlarmNotFound(NotFound):
    def __init__(self, alarm_id: int) -> None:
        super().__init__(f"alarm {alarm_id} not found", detail={"alarm": alarm_id})


class _Telemetry(NamedTuple):
    """What the conditions read of a cluster's latest heartbeat (ClusterHealth)."""

    power: str | None
    supply_v: float | None
    speaker_faults: list[int]
    relay_trip: str | None
    amp_temp_c: float | None
    clock_offset_s: float
    playing: str | None


_TELEMETRY_COLUMNS = tuple(getattr(ClusterHealth, name) for name in _Telemetry._fields)


@dataclass(frozen=True, slots=True)
class _State:
    cluster_id: int
    online: bool
    offline_since: datetime | None
    schedule_version: int
    schedule_version_held: int | None
    schedule_pushed_at: datetime | None
    health: _Telemetry | None


def conditions(
    state: _State, *, now: datetime, settings: Settings, sent: bool
) -> dict[AlarmKind, str]:
    """What is wrong with one cluster now, each with a line a technician can read.
    `sent`: whether what it reports playing is something we sent it."""
    found: dict[AlarmKind, str] = {}
    if not state.online:
        since = state.offline_since
        if since is not None and now - since >= timedelta(seconds=settings.offline_alarm_after_s):
            found[AlarmKind.OFFLINE] = f"offline since {since.isoformat(timespec='seconds')}"
        return found  # its last telemetry is stale: only the outage counts
    h = state.health
    if h is not None:
        if h.power == "battery":
            found[AlarmKind.ON_BATTERY] = f"on DC backup, {h.supply_v or 0:.1f} V"
        if h.speaker_faults:
            lines = ", ".join(map(str, h.speaker_faults))
            found[AlarmKind.SPEAKER_LINE] = f"speaker line(s) {lines} open or shorted"
        if h.relay_trip:
            found[AlarmKind.RELAY_TRIP] = f"protection relay tripped: {h.relay_trip}"
        if h.amp_temp_c is not None and h.amp_temp_c >= settings.amp_overheat_c:
            found[AlarmKind.AMP_OVERHEAT] = f"amplifier at {h.amp_temp_c:.0f} °C"
        if abs(h.clock_offset_s) >= settings.clock_drift_alarm_s:
            found[AlarmKind.CLOCK_DRIFT] = f"clock off by {h.clock_offset_s:+.1f} s"
        if h.playing and not sent:
            found[AlarmKind.OFF_SCHEDULE] = f"playing {h.playing[:80]}, which we did not send"
    stale_after = timedelta(seconds=settings.schedule_stale_alarm_s)
    if (
        state.schedule_version > 0
        and state.schedule_version_held != state.schedule_version
        and state.schedule_pushed_at is not None
        and now - state.schedule_pushed_at >= stale_after
    ):
        found[AlarmKind.SCHEDULE_STALE] = (
            f"holds version {state.schedule_version_held}, pushed {state.schedule_version}"
        )
    return found


async def _states(session: AsyncSession) -> list[_State]:
    # Columns, not ORM objects: this reads the whole fleet every few seconds, and ten
    # thousand mapped instances cost the event loop a third of a second (docs/benchmarks.md).
    rows = await session.execute(
        select(
            Cluster.id,
            Cluster.online,
            Cluster.offline_since,
            Cluster.schedule_version,
            Cluster.schedule_version_held,
            Cluster.schedule_pushed_at,
            ClusterHealth.cluster_id.is_(None),  # never heard a heartbeat
            *_TELEMETRY_COLUMNS,
        ).outerjoin(ClusterHealth, ClusterHealth.cluster_id == Cluster.id)
    )
    return [
        _State(cid, online, since, version, held, pushed, None if no_hb else _Telemetry(*telemetry))
        for cid, online, since, version, held, pushed, no_hb, *telemetry in rows.all()
    ]


async def _sent(session: AsyncSession, states: list[_State]) -> set[int]:
    """Clusters whose reported `playing` is a broadcast we sent them, or an item of a
    schedule we hold (a play from its stored schedule)."""
    playing = {
        s.cluster_id: s.health.playing
        for s in states
        if s.online and s.health is not None and s.health.playing
    }
    if not playing:
        return set()
    broadcasts = {p for p in playing.values() if not p.startswith(LOCAL_PLAY_PREFIX)}
    rows = await session.execute(
        select(Delivery.cluster_id, Delivery.broadcast_id).where(
            Delivery.broadcast_id.in_(broadcasts), Delivery.cluster_id.in_(list(playing))
        )
    )
    ours = {(cid, bid) for cid, bid in rows.all()}
    items = {
        cid: parsed[0]
        for cid, p in playing.items()
        if p.startswith(LOCAL_PLAY_PREFIX) and (parsed := parse_item(p[len(LOCAL_PLAY_PREFIX) :]))
    }
    schedules = (
        set(
            (
                await session.scalars(
                    select(Schedule.id).where(Schedule.id.in_(set(items.values())))
                )
            ).all()
        )
        if items
        else set()
    )
    return {
        cid
        for cid, p in playing.items()
        if (cid, p) in ours or (cid in items and items[cid] in schedules)
    }


async def evaluate(session: AsyncSession, *, now: datetime, settings: Settings) -> tuple[int, int]:
    """Raise what started, clear what ended; (raised, cleared)."""
    states = await _states(session)
    sent = await _sent(session, states)
    holding = {
        s.cluster_id: conditions(s, now=now, settings=settings, sent=s.cluster_id in sent)
        for s in states
    }
    open_alarms = (await session.scalars(select(Alarm).where(Alarm.cleared_at.is_(None)))).all()
    is_open = {(a.cluster_id, a.kind) for a in open_alarms}
    cleared = [a.id for a in open_alarms if AlarmKind(a.kind) not in holding.get(a.cluster_id, {})]
    if cleared:
        await session.execute(
            update(Alarm)
            .where(Alarm.id.in_(cleared), Alarm.cleared_at.is_(None))
            .values(cleared_at=now)
            .execution_options(synchronize_session=False)
        )
    raised = [
        Alarm(cluster_id=cid, kind=kind.value, detail=detail[:300], raised_at=now)
        for cid, found in holding.items()
        for kind, detail in found.items()
        if (cid, kind.value) not in is_open
    ]
    session.add_all(raised)
    await session.flush()
    return len(raised), len(cleared)


async def acknowledge(
    session: AsyncSession, *, alarm_id: int, who: str, now: datetime
) -> AlarmRead:
    """A person has seen it (the first acknowledgement stands)."""
    alarm = await session.get(Alarm, alarm_id, with_for_update=True)
    if alarm is None:
        raise AlarmNotFound(alarm_id)
    if alarm.acknowledged_at is None:
        alarm.acknowledged_at, alarm.acknowledged_by = now, who
        await session.flush()
    code = await session.scalar(select(Cluster.code).where(Cluster.id == alarm.cluster_id))
    return _read(alarm, code or "")


def _read(alarm: Alarm, code: str) -> AlarmRead:
    return AlarmRead(
        id=alarm.id,
        cluster=code,
        kind=alarm.kind,
        detail=alarm.detail,
        raised_at=alarm.raised_at,
        acknowledged_at=alarm.acknowledged_at,
        acknowledged_by=alarm.acknowledged_by,
        cleared_at=alarm.cleared_at,
    )


async def listing(
    session: AsyncSession,
    *,
    area_code: str | None,
    cluster_code: str | None,
    open_only: bool,
    kind: str | None,
    limit: int,
) -> Sequence[AlarmRead]:
    """Newest first: open ones only by default, the whole record on request."""
    query = select(Alarm, Cluster.code).join(Cluster, Alarm.cluster_id == Cluster.id)
    if area_code is not None:
        area = await area_service.get(session=session, code=area_code)
        query = query.join(Area, Cluster.area_id == Area.id).where(
            Area.path.startswith(area.path, autoescape=True)
        )
    if cluster_code is not None:
        query = query.where(Cluster.code == cluster_code)
    if open_only:
        query = query.where(Alarm.cleared_at.is_(None))
    if kind is not None:
        query = query.where(Alarm.kind == kind)
    rows = await session.execute(
        query.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit)
    )
    return [_read(alarm, code) for alarm, code in rows.all()]
