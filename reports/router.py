"""Reports over HTTP: JSON for the console, CSV for the district office."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from central import queries
from console import i18n, printable
from core.errors import InvalidInput
from core.policy import Action
from core.schemas import Instant
from reports import airtime, exports, monthly, printing
from reports.airtime import AreaAirtime, Units, UnitsQuery
from reports.monthly import MonthlyReport
from web.deps import RuntimeDep, SessionDep
from web.guard import allow
from web.targets import From

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Month = Annotated[str | None, Query(description="YYYY-MM, local; default this month")]
Lang = Annotated[str, Query(pattern="^(vi|en)$")]
Since = Annotated[Instant | None, Query(description="UTC; default 30 days ago")]
Until = Annotated[Instant | None, Query(description="UTC, exclusive; default now")]


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
    session: SessionDep,
    runtime: RuntimeDep,
    area: str,
    since: Since = None,
    until: Until = None,
    units: UnitsQuery = Units.THEN,
) -> list[AreaAirtime]:
    """Broadcasts, emergencies, plays and airtime per child area over the period, with
    the share of clusters working now; the area itself first."""
    start, end = _period(runtime, since, until)
    return await airtime.by_area(
        session=session,
        settings=runtime.settings,
        area_code=area,
        since=start,
        until=end,
        units=units,
    )


@router.get(
    "/airtime.csv",
    response_class=PlainTextResponse,
    dependencies=[allow(Action.READ, From.QUERY_AREA)],
)
async def airtime_csv(
    session: SessionDep,
    runtime: RuntimeDep,
    area: str,
    since: Since = None,
    until: Until = None,
    units: UnitsQuery = Units.THEN,
) -> PlainTextResponse:
    start, end = _period(runtime, since, until)
    rows = await airtime.by_area(
        session=session,
        settings=runtime.settings,
        area_code=area,
        since=start,
        until=end,
        units=units,
    )
    return PlainTextResponse(
        airtime.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="airtime-{area}.csv"'},
    )


async def _monthly(
    session: SessionDep,
    runtime: RuntimeDep,
    area: str | None,
    month: str | None,
    units: Units = Units.THEN,
) -> MonthlyReport:
    now = runtime.clock.now()
    return await monthly.build(
        session,
        runtime.settings,
        area or await queries.root_code(session),
        month or monthly.this_month(now, runtime.settings.default_timezone),
        now,
        units,
    )


def _attachment(report: MonthlyReport, suffix: str) -> dict[str, str]:
    name = f"bao-cao-{report.area_code}-{report.month}.{suffix}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/monthly", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def monthly_report(
    session: SessionDep,
    runtime: RuntimeDep,
    area: str | None = None,
    month: Month = None,
    units: UnitsQuery = Units.THEN,
) -> MonthlyReport:
    """The month's figures for an area (default: the province) and each of its children:
    broadcasts by class, drills, plays, airtime, share working, emergency delivery
    times (each emergency, and the medians), bulletins by topic, alarms; plays by day."""
    return await _monthly(session, runtime, area, month, units)


@router.get(
    "/monthly.csv",
    response_class=PlainTextResponse,
    dependencies=[allow(Action.READ, From.QUERY_AREA)],
)
async def monthly_csv(
    session: SessionDep,
    runtime: RuntimeDep,
    area: str | None = None,
    month: Month = None,
    units: UnitsQuery = Units.THEN,
) -> PlainTextResponse:
    """The month's table by area: the area itself first, then each child area."""
    report = await _monthly(session, runtime, area, month, units)
    return PlainTextResponse(
        exports.to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(report, "csv"),
    )


@router.get(
    "/monthly.xlsx", response_class=Response, dependencies=[allow(Action.READ, From.QUERY_AREA)]
)
async def monthly_xlsx(
    session: SessionDep,
    runtime: RuntimeDep,
    area: str | None = None,
    month: Month = None,
    lang: Lang = i18n.DEFAULT,
    units: UnitsQuery = Units.THEN,
) -> Response:
    """A workbook: summary, by area, emergencies, by day, bulletins by topic."""
    report = await _monthly(session, runtime, area, month, units)
    workbook = exports.to_xlsx(report, i18n.translations(lang).gettext)
    return Response(workbook, media_type=XLSX, headers=_attachment(report, "xlsx"))


@router.get(
    "/monthly.pdf", response_class=Response, dependencies=[allow(Action.READ, From.QUERY_AREA)]
)
async def monthly_pdf(
    session: SessionDep,
    runtime: RuntimeDep,
    area: str | None = None,
    month: Month = None,
    lang: Lang = i18n.DEFAULT,
    units: UnitsQuery = Units.THEN,
) -> Response:
    """The printable report with its charts, A4, for the provincial leadership (503 when
    this server has no Chromium to print with)."""
    report = await _monthly(session, runtime, area, month, units)
    settings = runtime.settings
    pdf = await printing.html_to_pdf(
        printable.monthly_html(report, lang),
        printing.find_chromium(settings.report_chromium),
        settings.report_print_timeout_s,
    )
    return Response(pdf, media_type="application/pdf", headers=_attachment(report, "pdf"))
