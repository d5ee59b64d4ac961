"""Reports over HTTP: JSON for the console, CSV for the district office."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from app.deps import RuntimeDep, SessionDep
from app.guard import From, allow
from core.errors import InvalidInput
from core.policy import Action
from reports import airtime
from reports.airtime import AreaAirtime

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

Since = Annotated[datetime | None, Query(description="UTC; default 30 days ago")]
Until = Annotated[datetime | None, Query(description="UTC, exclusive; default now")]


def _period(
    runtime: RuntimeDep, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    end = until or runtime.clock.now()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise InvalidInput("since must be before until", detail={"field": "since"})
    return start, end


@router.get("/airtime", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def airtime_report(
    session: SessionDep, runtime: RuntimeDep, area: str, since: Since = None, until: Until = None
) -> list[AreaAirtime]:
    """Broadcasts, emergencies, plays and airtime per child area over the period, with
    the share of clusters working now; the area itself first."""
    start, end = _period(runtime, since, until)
    return await airtime.by_area(
        session=session, settings=runtime.settings, area_code=area, since=start, until=end
    )


@router.get(
    "/airtime.csv",
    response_class=PlainTextResponse,
    dependencies=[allow(Action.READ, From.QUERY_AREA)],
)
async def airtime_csv(
    session: SessionDep, runtime: RuntimeDep, area: str, since: Since = None, until: Until = None
) -> PlainTextResponse:
    start, end = _period(runtime, since, until)
    rows = await airtime.by_area(
        session=session, settings=runtime.settings, area_code=area, since=start, until=end
    )
    return PlainTextResponse(
        airtime.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="airtime-{area}.csv"'},
    )
