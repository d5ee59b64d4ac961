"""Pages of the web console (server-rendered; a little JavaScript for forms and the live
view). Each page reads what it shows through the same services as the API, as the
signed-in person, so the area rule holds here as there; what the pages change goes
through the API itself, from the browser, with the session cookie."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identify import signed_in_as
from areas import service as area_service
from areas.models import Area
from authority.checks import touched
from broadcast import service as broadcast_service
from bulletins import inbox
from bulletins import service as bulletin_service
from bulletins.models import Bulletin
from bulletins.workflow import REVIEWERS, Status, may_author
from cap.models import CapMessage, CapOutcome
from console import i18n, printable
from console.headers import safe_next
from console.maps import commune_shapes, plot
from core.actors import Actor, Role
from core.database import session_scope
from core.errors import AppError
from core.policy import ALLOWED, Action, covers
from devices.models import Cluster
from health import service as health_service
from reports import airtime, monthly
from schedules import queries as schedule_queries
from schedules.recurrence import to_utc, zone
from standard_warnings import service as warning_service
from web.deps import SESSION_COOKIE, RuntimeDep
from web.guard import enforce, guarded
from web.targets import From

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(i18n.HERE / "templates"))

# What each role sees first on its home page, most urgent first.
HOME: dict[Role, list[str]] = {
    Role.PROVINCE_OFFICER: ["emergency", "bulletins", "health", "reports"],
    Role.ADMIN: ["emergency", "bulletins", "health", "reports"],
    Role.DISTRICT_OPERATOR: ["inbox", "schedule", "bulletins", "health"],
    Role.COMMUNE_OPERATOR: ["inbox", "schedule", "bulletins", "health"],
    Role.TECHNICIAN: ["health"],
    Role.EDITOR: ["bulletins", "health"],
    Role.OBSERVER: ["reports", "health"],
}


class SignInNeeded(Exception):
    """A page asked without a live session: answered with the sign-in page
    (`sign_in_first`, registered by the application)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class PageRefused(Exception):
    """A page the person may not see: answered with the console's 403 page
    (`refused_page`, registered by the application), and on record in the audit log."""

    def __init__(self, actor: Actor, status_code: int) -> None:
        super().__init__(status_code)
        self.actor, self.status_code = actor, status_code


async def signed_in(request: Request, runtime: RuntimeDep) -> Actor:
    """The person the session cookie stands for (kept on the request for the audit log)."""
    raw = request.cookies.get(SESSION_COOKIE)
    actor = await signed_in_as(runtime, raw) if raw else None
    if actor is None:
        raise SignInNeeded(request.url.path)
    request.state.actor = actor
    return actor


SignedIn = Annotated[Actor, Depends(signed_in)]


def page(action: Action, *sources: From) -> Any:
    """A page's rule, checked by the same guard as the API's endpoints (web/guard.py)."""

    async def check(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Actor:
        try:
            return await enforce(request, runtime, actor, action, sources)
        except AppError as exc:
            raise PageRefused(actor, exc.status_code) from exc

    return Depends(guarded(check, action, sources))


async def refused_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    return _render(request, "forbidden.html", exc.actor, status_code=exc.status_code)


async def sign_in_first(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    return RedirectResponse(f"/console/login?next={exc.path}", status_code=303)


def _render(
    request: Request, name: str, actor: Actor | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    locale = i18n.choose(request.query_params.get("lang"), request.cookies.get("lang"))
    gettext = i18n.translations(locale).gettext
    response = templates.TemplateResponse(
        request,
        name,
        {
            "_": gettext,
            "fmt": i18n.Formats(locale),
            "locale": locale,
            "actor": actor,
            "can_send_emergency": actor is not None
            and Action.SEND_EMERGENCY in ALLOWED[actor.role],
            "can_send": actor is not None and Action.SEND in ALLOWED[actor.role],
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in i18n.LOCALES:
        response.set_cookie("lang", locale, max_age=365 * 86400, samesite="lax")
    return response


async def _area_asked(request: Request, session: AsyncSession, actor: Actor) -> str | None:
    """The page's area: ?area=, else the person's own, else the whole province; None if
    it lies outside the person's area (or does not exist)."""
    root = await session.scalar(select(Area.code).where(Area.parent_id.is_(None)))
    area = request.query_params.get("area") or actor.area or root or ""
    # A dissolved unit's history is read by those who hold its heirs (authority/checks.py)
    found = await touched(session, [area], [])
    return area if any(covers(actor, path) for _, _, path in found) else None


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _render(request, "login.html", None, next=safe_next(request.query_params.get("next")))


@router.get("", dependencies=[page(Action.SELF, From.ANYWHERE)])
async def home(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    held: list[tuple[str, str]] = []
    if Action.SEND_EMERGENCY in ALLOWED[actor.role]:
        async with session_scope(runtime.sessions) as session:
            held = await _held_alerts(session)
    return _render(request, "home.html", actor, tiles=HOME[actor.role], held=held)


async def _held_alerts(session: AsyncSession) -> list[tuple[str, str]]:
    """(bulletin id, title) of the CAP alerts no voice here speaks that still wait for the
    duty officer to voice them (cap/airing.py): on the first page they see, red."""
    rows = await session.execute(
        select(Bulletin.id, Bulletin.title)
        .join(CapMessage, CapMessage.bulletin_id == Bulletin.id)
        .where(CapMessage.outcome == CapOutcome.HELD, Bulletin.status == Status.SUBMITTED.value)
        .order_by(CapMessage.received_at.desc())
        .limit(20)
    )
    return [(bulletin_id, title) for bulletin_id, title in rows]


async def _approved_bulletins(session: AsyncSession, actor: Actor) -> list[Bulletin]:
    """What may air, as the person may see it, newest first."""
    rows, _ = await bulletin_service.list_page(
        session=session,
        actor=actor,
        status=Status.APPROVED,
        topic=None,
        search=None,
        limit=200,
        offset=0,
    )
    return list(rows)


async def _areas_for(session: AsyncSession, actor: Actor) -> list[Area]:
    """The area tree the person may target, down to communes, in tree order."""
    rows = (
        await session.scalars(
            select(Area)
            .where(Area.depth <= 2, Area.dissolved_on.is_(None))  # today's units
            .order_by(Area.path)
        )
    ).all()
    return [a for a in rows if covers(actor, a.path)]


async def _commune_map(session: AsyncSession, areas: list[Area]) -> list[Any]:
    """The communes among `areas` drawn as outlines around their clusters' positions."""
    communes = {a.code: a for a in areas if a.depth == 2}
    rows = await session.execute(
        select(Area.path, Cluster.latitude, Cluster.longitude)
        .join(Cluster, Cluster.area_id == Area.id)
        .where(Cluster.latitude.is_not(None), Cluster.longitude.is_not(None))
    )
    placed = []
    for path, lat, lon in rows:
        parts = path.strip("/").split("/")  # province, district, commune, hamlet...
        commune = communes.get(parts[2]) if len(parts) > 2 else None
        if commune is not None and lat is not None and lon is not None:
            placed.append((commune.code, commune.name, commune.path, lat, lon))
    return commune_shapes(placed)


@router.get("/emergency", dependencies=[page(Action.SEND_EMERGENCY, From.ANYWHERE)])
async def emergency_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    async with session_scope(runtime.sessions) as session:
        approved = await _approved_bulletins(session, actor)
        warnings = await warning_service.list_all(session=session)
        areas = await _areas_for(session, actor)
        shapes = await _commune_map(session, areas)
    return _render(
        request,
        "emergency.html",
        actor,
        areas=areas,
        shapes=shapes,
        bulletins=approved,
        warnings=warnings,
    )


@router.get("/voice", dependencies=[page(Action.SEND, From.ANYWHERE)])
async def voice_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    """Live voice: speak now, heard on the chosen areas' clusters as it is said."""
    async with session_scope(runtime.sessions) as session:
        areas = await _areas_for(session, actor)
        shapes = await _commune_map(session, areas)
    return _render(request, "voice.html", actor, areas=areas, shapes=shapes)


@router.get("/broadcasts/{broadcast_id}", dependencies=[page(Action.READ, From.BROADCAST)])
async def live_page(
    broadcast_id: str, request: Request, runtime: RuntimeDep, actor: SignedIn
) -> Response:
    try:
        async with session_scope(runtime.sessions) as session:
            broadcast = await broadcast_service.read(
                session=session, broadcast_id=broadcast_id, unconfirmed_limit=0
            )
    except AppError as exc:
        return _render(request, "forbidden.html", actor, status_code=exc.status_code)
    return _render(request, "live.html", actor, broadcast=broadcast)


@router.get("/health", dependencies=[page(Action.READ, From.QUERY_AREA_OR_OWN)])
async def health_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    async with session_scope(runtime.sessions) as session:
        area = await _area_asked(request, session, actor)
        if area is None:
            return _render(request, "forbidden.html", actor, status_code=403)
        rows = await health_service.rollup(
            session=session, settings=runtime.settings, area_code=area
        )
        points = await health_service.map_points(
            session=session, settings=runtime.settings, area_code=area
        )
    return _render(request, "health.html", actor, rows=rows, area=area, map=plot(points))


@router.get("/clusters/{code}", dependencies=[page(Action.READ, From.CLUSTER_PATH)])
async def cluster_page(
    code: str, request: Request, runtime: RuntimeDep, actor: SignedIn
) -> Response:
    async with session_scope(runtime.sessions) as session:
        path = await session.scalar(
            select(Area.path).join(Cluster, Cluster.area_id == Area.id).where(Cluster.code == code)
        )
        if path is None or not covers(actor, path):
            return _render(request, "forbidden.html", actor, status_code=403)
        page = await health_service.cluster_health(
            session=session, settings=runtime.settings, code=code, history=24
        )
    may_operate = Action.OPERATE in ALLOWED[actor.role]
    return _render(request, "cluster.html", actor, page=page, may_operate=may_operate)


@router.get("/schedule", dependencies=[page(Action.READ, From.QUERY_AREA_OR_OWN)])
async def schedule_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    """A commune's schedule for a day or a week, in local time, by day."""
    tz = zone(runtime.settings.default_timezone)
    try:
        first = date.fromisoformat(request.query_params.get("day", ""))
    except ValueError:
        first = runtime.clock.now().astimezone(tz).date()
    days = 7 if request.query_params.get("days") != "1" else 1
    async with session_scope(runtime.sessions) as session:
        area = await _area_asked(request, session, actor)
        if area is None:
            return _render(request, "forbidden.html", actor, status_code=403)
        start = to_utc(datetime.combine(first, time()), tz)
        end = to_utc(datetime.combine(first + timedelta(days=days), time()), tz)
        slots = await schedule_queries.calendar(
            session=session, area_code=area, start=start, end=end
        )
        approved = await _approved_bulletins(session, actor)
        clusters = await _clusters_to_pick(session, area)
    by_day: dict[date, list[Any]] = {first + timedelta(days=i): [] for i in range(days)}
    for slot in slots:
        by_day.setdefault(slot.starts_local.date(), []).append(slot)
    return _render(
        request,
        "schedule.html",
        actor,
        area=area,
        by_day=by_day,
        first=first,
        days=days,
        previous=first - timedelta(days=days),
        following=first + timedelta(days=days),
        bulletins=[b for b in approved if b.cls != "emergency"],
        clusters=clusters,
        may_schedule=Action.SCHEDULE in ALLOWED[actor.role],
    )


PICKABLE_CLUSTERS = 300


async def _clusters_to_pick(session: AsyncSession, area: str) -> list[Cluster]:
    """The clusters under the area, for a slot that plays on some of them only (each
    cluster of a commune may air something different in one slot); none for an area
    too large to pick from a list (a district or the province: schedule by area)."""
    path = await session.scalar(select(Area.path).where(Area.code == area))
    rows = (
        await session.scalars(
            select(Cluster)
            .join(Area, Cluster.area_id == Area.id)
            .where(Area.path.startswith(path or "", autoescape=True))
            .order_by(Cluster.code)
            .limit(PICKABLE_CLUSTERS + 1)
        )
    ).all()
    return list(rows) if len(rows) <= PICKABLE_CLUSTERS else []


@router.get("/bulletins", dependencies=[page(Action.READ, From.ANYWHERE)])
async def bulletins_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    """The editorial queue (for the board: approve, or reject with a reason) and the
    library of approved bulletins, as the person may see them."""
    async with session_scope(runtime.sessions) as session:
        lists = {}
        for status in (Status.SUBMITTED, Status.APPROVED):
            lists[status.value] = await bulletin_service.list_page(
                session=session,
                actor=actor,
                status=status,
                topic=None,
                search=None,
                limit=100,
                offset=0,
            )
        # The person's own unfinished work: drafts to submit, rejections to revise.
        mine: list[Bulletin] = []
        for status in (Status.REJECTED, Status.DRAFT):
            rows, _ = await bulletin_service.list_page(
                session=session,
                actor=actor,
                status=status,
                topic=None,
                search=None,
                limit=50,
                offset=0,
                author=actor.name,
            )
            mine.extend(rows)
    return _render(
        request,
        "bulletins.html",
        actor,
        lists=lists,
        mine=mine,
        reviewer=actor.role in REVIEWERS,
        may_write=may_author(actor),
        topics=TOPICS,
    )


# Suggested topics (free text is allowed): what commune stations air, after DOMAIN.md.
TOPICS = ("general", "weather", "disaster", "health", "agriculture", "security", "policy")


@router.get("/inbox", dependencies=[page(Action.READ, From.QUERY_AREA_OR_OWN)])
async def inbox_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    """A commune's bulletins from above, pending first: put on air, or decline."""
    async with session_scope(runtime.sessions) as session:
        scope = await area_service.get(session=session, code=actor.area) if actor.area else None
        rows, _ = await inbox.list_page(session, scope=scope, status=None, limit=100, offset=0)
        items = [await inbox.to_read(session, item, b, a) for item, b, a in rows]
    may_handle = Action.INBOX in ALLOWED[actor.role]
    return _render(request, "inbox.html", actor, items=items, may_handle=may_handle)


@router.get("/reports/monthly", dependencies=[page(Action.READ, From.QUERY_AREA_OR_OWN)])
async def monthly_report_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    """The month's report as it prints (?month=YYYY-MM, default this month), with links to
    the PDF, the workbook and the CSV."""
    locale = i18n.choose(request.query_params.get("lang"), request.cookies.get("lang"))
    zone_name = runtime.settings.default_timezone
    now = runtime.clock.now()
    month = request.query_params.get("month") or monthly.this_month(now, zone_name)
    if not monthly.MONTH.match(month):
        month = monthly.this_month(now, zone_name)
    async with session_scope(runtime.sessions) as session:
        area = await _area_asked(request, session, actor)
        if area is None:
            return _render(request, "forbidden.html", actor, status_code=403)
        report = await monthly.build(session, runtime.settings, area, month, now)
    query = f"area={area}&month={month}&lang={locale}"
    _ = i18n.translations(locale).gettext
    downloads = [
        (_("Download PDF"), f"/api/v1/reports/monthly.pdf?{query}"),
        (_("Download XLSX"), f"/api/v1/reports/monthly.xlsx?{query}"),
        (_("Download as CSV"), f"/api/v1/reports/monthly.csv?area={area}&month={month}"),
    ]
    return HTMLResponse(printable.monthly_html(report, locale, downloads))


@router.get("/reports", dependencies=[page(Action.READ, From.QUERY_AREA_OR_OWN)])
async def reports_page(request: Request, runtime: RuntimeDep, actor: SignedIn) -> Response:
    """Broadcasts and airtime by area over the last 7, 30 or 90 days; share working."""
    days = {"7": 7, "90": 90}.get(request.query_params.get("days", ""), 30)
    units = airtime.Units.TODAY if request.query_params.get("units") == "today" else None
    until = runtime.clock.now()
    since = until - timedelta(days=days)
    async with session_scope(runtime.sessions) as session:
        area = await _area_asked(request, session, actor)
        if area is None:
            return _render(request, "forbidden.html", actor, status_code=403)
        rows = await airtime.by_area(
            session=session,
            settings=runtime.settings,
            area_code=area,
            since=since,
            until=until,
            units=units or airtime.Units.THEN,
        )
        history = await _history(session, area)
    return _render(
        request,
        "reports.html",
        actor,
        rows=rows,
        area=area,
        days=days,
        units=units.value if units else "then",
        history=history,
        since=since.isoformat(),
        until=until.isoformat(),
    )


async def _history(session: AsyncSession, code: str) -> dict[str, Any]:
    """Where the area came from and went: the units a reorganisation dissolved into it
    (each a link to its own history), and, dissolved itself, its day and successors."""
    rows = (
        await session.execute(
            select(Area.code, Area.name, Area.dissolved_on, Area.successors).where(
                Area.dissolved_on.is_not(None)
            )
        )
    ).all()
    itself = next((r for r in rows if r.code == code), None)
    successors: list[str] = list(itself.successors or []) if itself else []
    named = await session.execute(select(Area.code, Area.name).where(Area.code.in_(successors)))
    names = {c: n for c, n in named.all()}
    return {
        "predecessors": sorted(
            ((r.code, r.name, r.dissolved_on) for r in rows if code in (r.successors or [])),
            key=lambda r: r[0],
        ),
        "dissolved_on": itself.dissolved_on if itself else None,
        "successors": [(c, names.get(c, c)) for c in successors],
    }
