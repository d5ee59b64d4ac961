"""Where a request's areas come from (`From`), and the resolvers that find them.

A resolver maps a request to the areas and clusters it touches. Those that read only the
request (the query, the body, the path) are built in; those that read a stored thing (a
broadcast's targets, an alarm's cluster) belong to the domain that owns it, which declares
them (`TARGETS` in its router module) for the composition root to register (app/main.py).
So the guard knows no domain's tables, and an app whose routes use a source with no
resolver refuses to start (`Resolvers.require`) rather than answer 500 on first use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from authority.rules import Refused
from core.actors import Actor


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


# The guard answers these itself: nothing to look up.
NEED_NO_RESOLVER = frozenset({From.ANYWHERE, From.PROVINCE})


class Targets(NamedTuple):
    areas: list[str]
    clusters: list[str]


NOTHING = Targets([], [])


@dataclass(frozen=True)
class Asked:
    """What a resolver reads: the request, its JSON body (when a source needs it), and who
    asks (named in a refusal)."""

    request: Request
    body: dict[str, Any]
    actor: Actor

    def path_id(self, name: str) -> int:
        """A numeric id from the path, or -1 (nothing has it; the endpoint's own check
        answers)."""
        try:
            number = int(str(self.request.path_params.get(name)))
        except ValueError:
            return -1
        return number if 0 < number < 2**63 else -1


Resolver = Callable[[AsyncSession, Asked], Awaitable[Targets]]


class Aimed(Protocol):
    """A stored thing with targets of its own (a broadcast, a schedule, an operation...)."""

    @property
    def target_areas(self) -> Sequence[str]: ...
    @property
    def target_clusters(self) -> Sequence[str]: ...


def stored(model: type[Aimed], param: str, *, numeric: bool = False) -> Resolver:
    """The targets of the row of `model` whose id is the path's `param` (none if there is
    no such row: the endpoint answers 404)."""

    async def resolve(session: AsyncSession, asked: Asked) -> Targets:
        key = asked.path_id(param) if numeric else asked.request.path_params[param]
        row = await session.get(model, key)
        if row is None:
            return NOTHING
        return Targets(list(row.target_areas), list(row.target_clusters))

    return resolve


class Resolvers:
    """Source -> resolver: the request's own sources built in, the domains' registered."""

    def __init__(self) -> None:
        self._by_source: dict[From, Resolver] = dict(_FROM_THE_REQUEST)

    def register(self, source: From, resolver: Resolver) -> None:
        if self._by_source.get(source, resolver) is not resolver:
            raise ValueError(f"a resolver for From.{source.name} is registered already")
        self._by_source[source] = resolver

    def register_all(self, targets: Mapping[From, Resolver]) -> None:
        for source, resolver in targets.items():
            self.register(source, resolver)

    def missing(self, used: Iterable[From]) -> list[From]:
        return sorted(set(used) - NEED_NO_RESOLVER - set(self._by_source))

    def require(self, used: Iterable[From]) -> None:
        """Fails, naming them, if a source the routes use has no resolver."""
        if missing := self.missing(used):
            names = ", ".join(f"From.{source.name}" for source in missing)
            raise RuntimeError(f"routes use {names} but no domain registered a resolver")

    def __getitem__(self, source: From) -> Resolver:
        return self._by_source[source]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def _query_area_or_own(_session: AsyncSession, asked: Asked) -> Targets:
    return Targets([c for c in (asked.request.query_params.get("area"),) if c], [])


async def _query_area(_session: AsyncSession, asked: Asked) -> Targets:
    q, actor = asked.request.query_params, asked.actor
    codes = [c for c in (q.get("area"), q.get("under"), q.get("parent")) if c]
    if not codes:
        raise Refused(
            f"{actor.label} works in area {actor.area}: give ?area={actor.area} (or an "
            "area inside it)",
            "area",
            field="area",
        )
    return Targets(codes, [])


async def _body_targets(_session: AsyncSession, asked: Asked) -> Targets:
    body = asked.body
    areas = [*_strings(body.get("areas")), *_strings(body.get("area"))]
    return Targets([*areas, *_strings(body.get("area_code"))], _strings(body.get("clusters")))


async def _cluster_path(_session: AsyncSession, asked: Asked) -> Targets:
    return Targets([], [str(asked.request.path_params["code"])])


async def _area_path(_session: AsyncSession, asked: Asked) -> Targets:
    return Targets([str(asked.request.path_params["code"])], [])


_FROM_THE_REQUEST: dict[From, Resolver] = {
    From.QUERY_AREA_OR_OWN: _query_area_or_own,
    From.QUERY_AREA: _query_area,
    From.BODY_TARGETS: _body_targets,
    From.CLUSTER_PATH: _cluster_path,
    From.AREA_PATH: _area_path,
}
