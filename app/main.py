"""The FastAPI application and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from accounts.router import SigningIn
from accounts.router import router as accounts_router
from app import errors
from app.errors import InternalErrors
from app.gate import RequestGate
from app.metrics import RequestCounter
from app.metrics import router as metrics_router
from app.ops_router import router as ops_router
from app.runtime import Runtime
from areas.router import router as areas_router
from audit.middleware import AuditMiddleware
from audit.router import router as audit_router
from broadcast import router as broadcast_api
from broadcast.context import Sending
from bulletins.router import router as bulletins_router
from cap.router import router as cap_router
from central.inbound import router as central_inbox_router
from central.router import router as central_router
from console.headers import ConsoleHeaders
from console.router import PageRefused, SignInNeeded, refused_page, sign_in_first
from console.router import router as console_router
from core import heap
from core.clock import Clock
from core.context import Context
from core.settings import Settings, get_settings
from devices.router import router as devices_router
from firmware import router as firmware_api
from health import router as health_api
from live.asgi import LiveStreamApp
from live.router import router as live_router
from live.service import Live
from media.asgi import MediaApp
from media.context import Ingesting
from media.router import router as media_router
from reorganisation.router import router as reorganisation_router
from reports.router import router as reports_router
from schedules import router as schedules_api
from schedules.router import Scheduling
from standard_warnings.router import Library
from standard_warnings.router import router as warnings_router
from web.guard import sources_used
from web.targets import Resolvers

log = logging.getLogger(__name__)
CONSOLE_STATIC = Path(__file__).resolve().parent.parent / "console" / "static"
# In the order they are matched.
ROUTERS: tuple[APIRouter, ...] = (
    reorganisation_router,  # before areas_router: /areas/reorganise is not an area
    areas_router,
    devices_router,
    media_router,
    broadcast_api.router,
    live_router,
    bulletins_router,
    schedules_api.router,
    warnings_router,
    health_api.router,
    firmware_api.router,
    accounts_router,
    audit_router,
    console_router,
    reports_router,
    ops_router,
    metrics_router,
    cap_router,
    central_router,
    central_inbox_router,
)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's own routes, built once when its module was imported, become the app's.

    Why not `app.include_router`: FastAPI 0.16x makes an included router's routes afresh
    for each app, on its first request (their dependencies, parameters and response
    models analysed again): 0.31 to 0.45 s of CPU per app on this machine, paid by every
    test that makes an app (about 1,000 of them: a third of the suite's CPU). Nothing is
    lost: the routers are included with nothing of their own (no prefix, dependencies or
    lifespan at the include; their prefixes and tags are in their routes already), so
    the routes are the same, and tests/test_openapi_routes.py checks that the
    application's OpenAPI document is the one `include_router` gives. One difference:
    `app.dependency_overrides` does not reach these routes (nothing here uses it; tests
    run the real dependencies)."""
    app.router.routes.extend(router.routes)


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, *, settle_heap: bool = False
) -> FastAPI:
    """`settle_heap`: for the serving process itself (core.heap), not for tests."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, clock)
        app.state.runtime = runtime
        await runtime.start()
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Provincial loudspeaker broadcast control",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    for router in ROUTERS:
        add_routes(app, router)
    app.state.resolvers = resolvers()
    app.state.resolvers.require(sources_used(app.router.routes))

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse("/console")

    app.add_middleware(RequestGate)  # inside the audit: what it refuses is on record
    app.add_middleware(AuditMiddleware)
    app.add_middleware(ConsoleHeaders)
    app.add_middleware(RequestCounter)
    app.add_middleware(InternalErrors)  # outermost: whatever escapes, one shape, kept alive
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    app.mount(
        "/media",
        MediaApp(
            lambda: app.state.runtime.settings.media_dir,
            lambda: app.state.runtime.media_cache,
            lambda: app.state.runtime.settings.media_signing_key,
        ),
        name="media-files",
    )

    app.mount(
        "/live",
        LiveStreamApp(
            lambda: app.state.runtime.live,
            lambda: app.state.runtime.settings.media_signing_key,
        ),
        name="live-streams",
    )

    errors.install(app)
    app.add_exception_handler(SignInNeeded, sign_in_first)
    app.add_exception_handler(PageRefused, refused_page)

    return app


def resolvers() -> Resolvers:
    """How the guard finds what a request touches: the domains' own resolvers for what is
    stored in them (a broadcast's targets, an alarm's cluster), beside the built-in ones."""
    found = Resolvers()
    for targets in (
        broadcast_api.TARGETS,
        schedules_api.TARGETS,
        health_api.TARGETS,
        firmware_api.TARGETS,
    ):
        found.register_all(targets)
    return found


def runtime_fits(
    runtime: Runtime,
) -> tuple[Context, Sending, Ingesting, SigningIn, Scheduling, Live, Library]:
    """The domains ask for narrow contexts (Protocols) rather than the runtime itself;
    this is where mypy checks that the runtime provides every one of them. Not called."""
    return runtime, runtime, runtime, runtime, runtime, runtime, runtime
