"""The monthly report for the provincial leadership: one area, one calendar month (in the
province's time zone), every figure from the delivery, bulletin and alarm records.

The same report is read as JSON, downloaded as CSV (the table by area) and XLSX (every
table, one sheet each), and printed to PDF from its HTML page (reports/printing.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from broadcast.models import Broadcast
from central import queries
from central.schemas import Statistics
from core.errors import InvalidInput
from core.settings import Settings
from reports import airtime

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MOST_EMERGENCIES = 1000


class AreaStatistics(Statistics):
    name: str


class EmergencyLine(BaseModel):
    """One emergency broadcast of the month and how fast its clusters confirmed."""

    id: str
    title: str
    created_at: datetime
    drill: bool
    clusters: int
    confirmed: int
    to_50_s: float | None
    to_90_s: float | None
    to_100_s: float | None


class DayLine(BaseModel):
    """Broadcasts sent on one local day and what the clusters played of them."""

    day: date
    broadcasts: int
    plays: int
    airtime_s: int


class MonthlyReport(BaseModel):
    area_code: str
    area_name: str
    month: str  # YYYY-MM
    since: datetime
    until: datetime
    made_at: datetime
    time_zone: str
    units: airtime.Units = airtime.Units.THEN  # the units figures are counted in
    totals: AreaStatistics
    areas: list[AreaStatistics]  # each child area, by code
    emergencies: list[EmergencyLine]
    days: list[DayLine]


def month_bounds(month: str, zone: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of a local calendar month, in UTC."""
    found = MONTH.match(month)
    if found is None:
        raise InvalidInput("month must be written YYYY-MM", detail={"field": "month"})
    year, number = int(found[1]), int(found[2])
    local = ZoneInfo(zone)
    start = datetime(year, number, 1, tzinfo=local)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=local)
    return start.astimezone(UTC), end.astimezone(UTC)


def this_month(now: datetime, zone: str) -> str:
    return now.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


async def build(
    session: AsyncSession,
    settings: Settings,
    area_code: str,
    month: str,
    now: datetime,
    units: airtime.Units = airtime.Units.THEN,
) -> MonthlyReport:
    zone = settings.default_timezone
    since, until = month_bounds(month, zone)
    area = await area_service.get(session=session, code=area_code)
    rows = await airtime.by_area(
        session=session,
        settings=settings,
        area_code=area_code,
        since=since,
        until=until,
        units=units,
    )
    per_area = [
        AreaStatistics(
            name=row.name,
            **(
                await queries.statistics_for(
                    session, settings, row.area_code, since, until, own=row, units=units
                )
            ).model_dump(),
        )
        for row in rows
    ]
    entries, _ = await queries.broadcasts(
        session, area.path, since, until, "emergency", MOST_EMERGENCIES, 0, units
    )
    emergencies = [
        EmergencyLine(
            id=e.id,
            title=e.title,
            created_at=e.created_at,
            drill=e.drill,
            clusters=e.clusters,
            confirmed=e.confirmed,
            to_50_s=e.times.to_50,
            to_90_s=e.times.to_90,
            to_100_s=e.times.to_100,
        )
        for e in sorted(entries, key=lambda e: e.created_at)
    ]
    return MonthlyReport(
        area_code=area.code,
        area_name=area.name,
        month=month,
        since=since,
        until=until,
        made_at=now,
        time_zone=zone,
        units=units,
        totals=per_area[0],
        areas=per_area[1:],
        emergencies=emergencies,
        days=await _days(session, area.path, since, until, ZoneInfo(zone), units),
    )


async def _days(
    session: AsyncSession,
    path: str,
    since: datetime,
    until: datetime,
    local: ZoneInfo,
    units: airtime.Units,
) -> list[DayLine]:
    """Every local day of the month, quiet ones included (a chart needs the gaps)."""
    query = airtime.played_per_broadcast(path, since, until, Broadcast.created_at, units=units)
    sent: dict[date, int] = defaultdict(int)
    plays: dict[date, int] = defaultdict(int)
    seconds_on: dict[date, float] = defaultdict(float)
    for created_at, _id, n, airtime_s in (await session.execute(query)).all():
        day = created_at.astimezone(local).date()
        sent[day] += 1
        plays[day] += int(n or 0)
        seconds_on[day] += float(airtime_s or 0)
    first, last = since.astimezone(local).date(), (until - timedelta(seconds=1)).astimezone(local)
    days = [first + timedelta(days=k) for k in range((last.date() - first).days + 1)]
    return [
        DayLine(day=d, broadcasts=sent[d], plays=plays[d], airtime_s=round(seconds_on[d]))
        for d in days
    ]
