"""The central source information system's API (`/api/v1/central`, docs/central-api.md):
read-only, paginated (`limit`, `offset`, `total`), filtered by area (`area`: that unit
and everything under it) and by time (`since` inclusive, `until` exclusive, with a zone).
Meant for the national level's observer account; any signed-in person may read what
their area allows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from central import queries
from central.schemas import (
    AreaEntry,
    BroadcastEntry,
    BulletinEntry,
    ScheduleEntry,
    StationEntry,
    Statistics,
)
from core.errors import InvalidInput
from core.policy import Action
from core.schemas import Instant, Limit, Offset, Page
from reports.airtime import Units, UnitsQuery
from web.deps import RuntimeDep, SessionDep
from web.guard import allow
from web.targets import From

router = APIRouter(
    prefix="/api/v1/central",
    tags=["central"],
    dependencies=[allow(Action.READ, From.QUERY_AREA)],
)
AreaQuery = Annotated[str | None, Query(description="an area code: it and its subtree")]
When = Annotated[Instant | None, Query(description="ISO 8601 with a zone")]
ClassQuery = Annotated[str | None, Query(alias="class", pattern="^(normal|priority|emergency)$")]


def _zoned(**values: datetime | None) -> None:
    for name, value in values.items():
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} must carry a time zone (UTC: ...Z)", detail={"field": name})


@router.get("/areas")
async def areas(
    session: SessionDep,
    area: AreaQuery = None,
    level: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AreaEntry]:
    """Administrative units (official codes), in tree order."""
    path = await queries.area_path(session, area)
    items, total = await queries.areas(session, path, level, limit, offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/stations")
async def stations(
    session: SessionDep,
    area: AreaQuery = None,
    kind: Annotated[str | None, Query(pattern="^(speaker_cluster|eboard)$")] = None,
    online: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[StationEntry]:
    """Loudspeaker clusters and e-boards: code, position, state now."""
    path = await queries.area_path(session, area)
    items, total = await queries.stations(session, path, kind, online, limit, offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/eboards")
async def eboards(
    session: SessionDep,
    area: AreaQuery = None,
    online: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[StationEntry]:
    """The public electronic bulletin boards alone."""
    path = await queries.area_path(session, area)
    items, total = await queries.stations(session, path, "eboard", online, limit, offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/bulletins")
async def bulletins(
    session: SessionDep,
    area: AreaQuery = None,
    since: When = None,
    until: When = None,
    cls: ClassQuery = None,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[BulletinEntry]:
    """Bulletins written in the area, with class and validity, changed in the period."""
    _zoned(since=since, until=until)
    path = await queries.area_path(session, area)
    items, total = await queries.bulletins(session, path, since, until, cls, status, limit, offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/schedules")
async def schedules(
    session: SessionDep,
    area: AreaQuery = None,
    status: Annotated[str | None, Query(pattern="^(active|paused|ended)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ScheduleEntry]:
    """Schedules reaching into the area."""
    path = await queries.area_path(session, area)
    items, total = await queries.schedules(session, path, status, limit, offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/broadcasts")
async def broadcasts(
    session: SessionDep,
    area: AreaQuery = None,
    since: When = None,
    until: When = None,
    cls: ClassQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
    units: UnitsQuery = Units.THEN,
) -> Page[BroadcastEntry]:
    """The broadcast log, newest first: clusters reached in the area, confirmed, played,
    failed, and the time until 50, 90 and 100% had confirmed."""
    _zoned(since=since, until=until)
    path = await queries.area_path(session, area)
    items, total = await queries.broadcasts(session, path, since, until, cls, limit, offset, units)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/statistics")
async def statistics(
    session: SessionDep,
    runtime: RuntimeDep,
    area: AreaQuery = None,
    since: When = None,
    until: When = None,
    units: UnitsQuery = Units.THEN,
) -> Statistics:
    """One area over a period (default: the last 30 days)."""
    _zoned(since=since, until=until)
    end = until or runtime.clock.now()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise InvalidInput("since must be before until", detail={"field": "since"})
    code = area or await queries.root_code(session)
    return await queries.statistics_for(session, runtime.settings, code, start, end, units=units)
