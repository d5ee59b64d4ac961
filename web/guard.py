"""Every endpoint's authorisation: `dependencies=[allow(Action.X, From.Y, ...)]`.

`allow` checks the role against core.policy, then, for a person scoped to an area, that
what the request touches lies in that area: the `area` (or `under`) query parameter,
the `areas` and `clusters` of the body, the cluster or area in the path, or the targets
of the broadcast, schedule, operation or rollout it names (web/targets.py: the domains
register how to find those, so the guard knows none of their tables). Reading something
is allowed when it reaches into the person's area (a province-wide emergency is visible
to every commune it sounds in); changing or cancelling it needs all of it inside.

Province-level people (no area) pass the area rule without a query, so the duty
officer's emergency costs nothing extra. A test walks every route and fails if one has
no `allow` (tests/security/test_roles.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute

from authority.checks import area_path, touched
from authority.rules import Refused, inside
from core.actors import Actor
from core.context import Context
from core.database import session_scope
from core.errors import Forbidden, Unauthenticated
from core.policy import Action, covers, require
from web.deps import ActorDep, RuntimeDep
from web.targets import Asked, From, Resolvers

GUARD_MARKER = "__broadcast_guard__"  # lets the test find routes without a guard
SOURCES_MARKER = "__broadcast_guard_sources__"


def allow(action: Action, *sources: From) -> Any:
    async def check(request: Request, runtime: RuntimeDep, actor: ActorDep) -> Actor:
        return await enforce(request, runtime, actor, action, sources)

    return Depends(guarded(check, action, sources))


def guarded[F](check: F, rule: Action | str, sources: tuple[From, ...] = ()) -> F:
    """Marks a dependency as a route's guard (a test finds routes without one) and keeps
    the sources it reads (the app checks at startup that each has a resolver)."""
    setattr(check, GUARD_MARKER, rule)
    setattr(check, SOURCES_MARKER, sources)
    return check


def sources_used(routes: Iterable[BaseRoute]) -> set[From]:
    """Every source the guards of these routes read, included routers' routes too."""
    used: set[From] = set()
    for route in routes:
        inner = getattr(route, "router", None) or getattr(route, "original_router", None)
        if inner is not None and not isinstance(route, APIRoute):
            used |= sources_used(inner.routes)
        elif isinstance(route, APIRoute):
            for dependency in route.dependant.dependencies:
                used.update(getattr(dependency.call, SOURCES_MARKER, ()))
    return used


def basic_credentials(header: str) -> tuple[str, str]:
    """(user, password) of an `Authorization: Basic` header, or Unauthenticated."""
    scheme, _, encoded = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError(scheme)
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        raise Unauthenticated("Authorization must be `Basic` with the device's code") from None
    if not sep:
        raise Unauthenticated("Authorization must be `Basic` with the device's code")
    return user, password


async def enforce(
    request: Request, runtime: Context, actor: Actor, action: Action, sources: tuple[From, ...]
) -> Actor:
    """The role against the policy, then the area rule for what the request touches. The
    API's `allow` and the console's pages (console/router.py `page`) both come here."""
    body = await _body(request) if From.BODY_TARGETS in sources else {}
    request.state.audit_detail = _summary(body)
    wanted = action
    sending = action is Action.SEND and From.BODY_TARGETS in sources  # (a page has no body)
    if sending and body.get("class", "emergency") == "emergency":
        wanted = Action.SEND_EMERGENCY  # the class a broadcast defaults to
    try:
        require(actor, wanted)
    except Forbidden as refused:
        if wanted is not action and isinstance(refused.detail, dict):
            refused.detail["field"] = "class"  # the class asked for is what to change
        raise
    if actor.area is None or From.ANYWHERE in sources:
        return actor
    if From.PROVINCE in sources:
        raise Refused(
            f"{actor.label} works in area {actor.area}; this is province-wide",
            "area",
            yours=actor.area,
        )
    reading = action is Action.READ
    resolvers: Resolvers = request.app.state.resolvers
    asked = Asked(request, body, actor)
    async with session_scope(runtime.sessions) as session:
        for source in sources:
            areas, clusters = await resolvers[source](session, asked)
            await _check(
                session,
                actor,
                areas,
                clusters,
                overlap=reading and source in _RESOURCES,
                reading=reading,
            )
    return actor


# Reading a stored broadcast, schedule, operation or rollout: reaching into the person's
# area is enough (a province-wide emergency is visible to every commune it sounds in).
_RESOURCES = frozenset({From.BROADCAST, From.SCHEDULE, From.OPERATION, From.ROLLOUT})


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}  # the endpoint's own validation answers 422
    return data if isinstance(data, dict) else {}


AUDITED = (
    "class",
    "title",
    "kind",
    "params",
    "areas",
    "clusters",
    "firmware",
    "bulletin_id",
    "media_sha256",
    "warning",
    "stream_url",
    "expires_at",
)


def _summary(body: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a request: what and where, not the whole body."""
    kept: dict[str, Any] = {}
    for key in AUDITED:
        value = body.get(key)
        if isinstance(value, list) and len(value) > 50:
            value = [*value[:50], f"... {len(value) - 50} more"]
        if value is not None:
            kept[key] = value
    return kept


async def _check(
    session: AsyncSession,
    actor: Actor,
    areas: list[str],
    clusters: list[str],
    *,
    overlap: bool,
    reading: bool,
) -> None:
    """Every area and cluster inside the actor's area (or, reading a resource, at least
    one reaching into it). Reading a unit a reorganisation dissolved, holding one of its
    heirs is enough (`touched` lists their paths beside its own). Unknown codes pass: the
    endpoint answers 404 naming them."""
    if not areas and not clusters:
        return
    paths = await touched(session, areas, clusters)
    if reading and not overlap:
        held = {(kind, code) for kind, code, path in paths if covers(actor, path)}
        inside(actor, [p for p in paths if (p[0], p[1]) not in held])
        return
    if not overlap:
        inside(actor, paths)
        return
    own = await area_path(session, actor.area) if actor.area is not None else ""
    for kind, code, path in paths:
        around = kind == "area" and f"/{code}/" in own  # it contains the actor's area
        if covers(actor, path) or around:
            return
    if paths:
        inside(actor, paths[:1])  # refused, naming the first
