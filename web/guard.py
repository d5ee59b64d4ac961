"""Every endpoint's authorisation: `dependencies=[allow(Action.X, From.Y, ...)]`.

`allow` checks the role against core.policy, then, for a person scoped to an area, that
what the request touches lies in that area: the `area` (or `under`) query parameter,
the `areas` and `clusters` of the body, the cluster or area in the path, or the targets
of the broadcast, schedule, operation or rollout it names. Reading something is allowed
when it reaches into the person's area (a province-wide emergency is visible to every
commune it sounds in); changing or cancelling it needs all of it inside.

Province-level people (no area) pass the area rule without a query, so the duty
officer's emergency costs nothing extra. A test walks every route and fails if one has
no `allow` (tests/security/test_roles.py).
"""

from __future__ import annotations

import base64
import json
from enum import StrEnum
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from authority.checks import touched
from authority.rules import Refused, inside
from core.actors import Actor
from core.context import Context
from core.database import session_scope
from core.errors import Unauthenticated
from core.policy import Action, covers, require
from devices import service as device_service
from devices.models import Cluster
from web.deps import ActorDep, RuntimeDep


class From(StrEnum):
    """Where a request's areas come from."""

    ANYWHERE = "anywhere"  # nothing area-bound (one's own account, media by hash)
    PROVINCE = "province"  # province-wide data: only people not scoped to an area
    QUERY_AREA = "query_area"  # ?area= or ?under=, required of scoped people
    QUERY_AREA_OR_OWN = "query_area_or_own"  # ?area= if given; else the endpoint uses theirs
    BODY_TARGETS = "body_targets"  # "areas" and "clusters" in the JSON body
    CLUSTER_PATH = "cluster_path"  # {code} is a cluster
    AREA_PATH = "area_path"  # {code} is an area
    BROADCAST = "broadcast"  # {broadcast_id}'s targets
    SCHEDULE = "schedule"  # {schedule_id}'s targets
    OPERATION = "operation"  # {operation_id}'s targets
    ROLLOUT = "rollout"  # {rollout_id}'s targets
    ALARM = "alarm"  # {alarm_id}'s cluster


GUARD_MARKER = "__broadcast_guard__"  # lets the test find routes without a guard


def allow(action: Action, *sources: From) -> Any:
    async def check(request: Request, runtime: RuntimeDep, actor: ActorDep) -> Actor:
        return await enforce(request, runtime, actor, action, sources)

    setattr(check, GUARD_MARKER, action)
    return Depends(check)


def the_device_itself() -> Any:
    """A device's own request (its provisioning): HTTP Basic with the cluster code and
    broker password, the code the one in the path. No person is involved, so no role."""

    async def check(request: Request, runtime: RuntimeDep) -> Cluster:
        code, password = _basic(request.headers.get("authorization", ""))
        if code != request.path_params.get("code"):
            raise Unauthenticated("a device asks for its own code only")
        async with session_scope(runtime.sessions) as session:
            return await device_service.authenticate_device(session, code, password)

    setattr(check, GUARD_MARKER, "device")
    return Depends(check)


def _basic(header: str) -> tuple[str, str]:
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
    if action is Action.SEND and body.get("class", "emergency") == "emergency":
        wanted = Action.SEND_EMERGENCY  # the class a broadcast defaults to
    require(actor, wanted)
    if actor.area is None or From.ANYWHERE in sources:
        return actor
    if From.PROVINCE in sources:
        raise Refused(
            f"{actor.label} works in area {actor.area}; this is province-wide",
            "area",
            yours=actor.area,
        )
    reading = action is Action.READ
    async with session_scope(runtime.sessions) as session:
        for source in sources:
            areas, clusters = await _touched(session, source, request, body, actor)
            await _check(
                session,
                actor,
                areas,
                clusters,
                overlap=reading and source in _RESOURCES,
                reading=reading,
            )
    return actor


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


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def _touched(
    session: AsyncSession, source: From, request: Request, body: dict[str, Any], actor: Actor
) -> tuple[list[str], list[str]]:
    """(area codes, cluster codes) the request touches through one source."""
    params = request.path_params
    if source is From.QUERY_AREA_OR_OWN:
        return [c for c in (request.query_params.get("area"),) if c], []
    if source is From.QUERY_AREA:
        q = request.query_params
        codes = [c for c in (q.get("area"), q.get("under"), q.get("parent")) if c]
        if not codes:
            raise Refused(
                f"{actor.label} works in area {actor.area}: give ?area={actor.area} (or an "
                "area inside it)",
                "area",
                field="area",
            )
        return codes, []
    if source is From.BODY_TARGETS:
        areas = [*_strings(body.get("areas")), *_strings(body.get("area"))]
        return [*areas, *_strings(body.get("area_code"))], _strings(body.get("clusters"))
    if source is From.CLUSTER_PATH:
        return [], [str(params["code"])]
    if source is From.AREA_PATH:
        return [str(params["code"])], []
    if source is From.ALARM:
        from health.models import Alarm

        code = await session.scalar(
            select(Cluster.code)
            .join(Alarm, Alarm.cluster_id == Cluster.id)
            .where(Alarm.id == _int(params.get("alarm_id")))
        )
        return [], [code] if code else []
    model, key = _resource_model(source)
    row = await session.get(model, _int(params[key]) if source is From.ROLLOUT else params[key])
    if row is None:
        return [], []  # the endpoint answers 404
    return list(row.target_areas), list(row.target_clusters)


def _int(value: object) -> int:
    """An id from the path, or -1 (nothing has it; the endpoint's own check answers)."""
    try:
        number = int(str(value))
    except ValueError:
        return -1
    return number if 0 < number < 2**63 else -1


def _resource_model(source: From) -> tuple[Any, str]:
    from broadcast.models import Broadcast
    from firmware.models import Rollout
    from health.models import Operation
    from schedules.models import Schedule

    return {
        From.BROADCAST: (Broadcast, "broadcast_id"),
        From.SCHEDULE: (Schedule, "schedule_id"),
        From.OPERATION: (Operation, "operation_id"),
        From.ROLLOUT: (Rollout, "rollout_id"),
    }[source]


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
    own = await session.scalar(select(Area.path).where(Area.code == actor.area)) or ""
    for kind, code, path in paths:
        around = kind == "area" and f"/{code}/" in own  # it contains the actor's area
        if covers(actor, path) or around:
            return
    if paths:
        inside(actor, paths[:1])  # refused, naming the first
