"""The authority check against the database: the rules (authority/rules.py) with the
area paths of what a request touches. Called by the services that write broadcasts,
schedules, operations and rollouts, inside their transaction, before they write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import repository as area_repository
from areas.models import Area
from authority.rules import Deed, decide, inside
from core.actors import Actor
from core.database import chunked
from devices.models import Cluster
from wire.protocol import CommandClass, SenderLevel


async def authorise(
    session: AsyncSession,
    actor: Actor,
    deed: Deed,
    *,
    cls: CommandClass | None = None,
    level: SenderLevel | str | None = None,
    areas: Sequence[str] = (),
    clusters: Sequence[str] = (),
) -> SenderLevel:
    """The level the deed is done at, or Refused (403 naming the missing role, area or
    level). Province-level people touch no table here: the duty officer's emergency pays
    nothing for the check."""
    decided = decide(actor, deed, cls=cls, level=SenderLevel(level) if level is not None else None)
    if actor.area is not None:
        inside(actor, await touched(session, areas, clusters))
    return decided


class Aimed(Protocol):
    """A request that puts something on air: a broadcast's or a schedule's."""

    @property
    def cls(self) -> CommandClass: ...
    @property
    def level(self) -> SenderLevel | None: ...
    @property
    def areas(self) -> list[str]: ...
    @property
    def clusters(self) -> list[str]: ...


async def authorise_aimed(
    session: AsyncSession, actor: Actor, deed: Deed, request: Aimed
) -> SenderLevel:
    """`authorise` for a request that carries its class, level and targets."""
    return await authorise(
        session,
        actor,
        deed,
        cls=request.cls,
        level=request.level,
        areas=request.areas,
        clusters=request.clusters,
    )


async def area_path(session: AsyncSession, code: str) -> str:
    """The area's path ("/70/689/..."), or "" for an unknown code."""
    return await session.scalar(select(Area.path).where(Area.code == code)) or ""


async def touched(
    session: AsyncSession, areas: Sequence[str], clusters: Sequence[str]
) -> list[tuple[str, str, str]]:
    """(kind, code, area path) of each known area and cluster. Unknown codes are left
    out: the service answers 404 naming them."""
    paths: list[tuple[str, str, str]] = []
    # In chunks: a request may name 100,000 clusters, past SQLite's bind-parameter limit.
    for chunk in chunked(list(areas), 1):
        units = await session.execute(
            select(Area.code, Area.path, Area.successors).where(Area.code.in_(chunk))
        )
        for code, path, successors in units.all():
            paths.append(("area", code, path))
            # A unit a reorganisation dissolved is also where its heirs are: the ward
            # that took over an old commune reads its history. Writing needs every path
            # covered (the old one too), so this widens reading only.
            if successors:
                heirs = await area_repository.heirs_paths(session, successors)
                paths += [("area", code, heir) for heir in heirs]
    for chunk in chunked(list(clusters), 1):
        rows = await session.execute(
            select(Cluster.code, Area.path)
            .join(Area, Area.id == Cluster.area_id)
            .where(Cluster.code.in_(chunk))
        )
        paths += [("cluster", code, path) for code, path in rows.all()]
    return paths
