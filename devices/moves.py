"""The one rule for a cluster's topics: a cluster listens on the command topics of every
area on its path (docs/protocol.md 2, 4.6), so whatever changes that path (a cluster
given another area, an area moved under another parent, a reorganisation) comes through
here. Before the change the cluster is marked `moving_from` its old path, so broadcasts
and operations to an area above it name it on its own topic too
(broadcast.service.addressed) until it confirms a signed set_areas; and the transaction
remembers it, so the write scope will not commit a move no device is told of
(`UntoldMove`): the flow tells them in the same transaction (health.moving) or, a
reorganisation, says a later step will (`tell_later`).

tests/devices/test_moves.py finds every writer of a cluster's area or an area's path
with `ast` and fails one that does not come through here."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from areas import repository as area_repository
from areas.models import Area
from core.writes import GuardedSession
from devices.models import Cluster

MOVED = "clusters_moved"  # Session.info key: ids moved in this transaction, not yet told


class UntoldMove(RuntimeError):
    """A transaction that moved clusters committing without telling their devices."""


async def mark_moving(
    session: AsyncSession, *, clusters: Iterable[int] = (), under: Iterable[str] = ()
) -> None:
    """Before their paths change: these clusters (by id), and every cluster under these
    paths, keep listening on their current topics until they confirm the new ones. One
    already moving keeps the path it first left: it has not confirmed anything since."""
    ids, prefixes = list(clusters), list(under)
    conditions: list[ColumnElement[bool]] = [Cluster.id.in_(ids)] if ids else []
    conditions += [
        Cluster.area_id.in_(select(Area.id).where(Area.path.startswith(p, autoescape=True)))
        for p in prefixes
    ]
    if not conditions:
        return
    found = set((await session.scalars(select(Cluster.id).where(or_(*conditions)))).all())
    if not found:
        return
    path_of = select(Area.path).where(Area.id == Cluster.area_id).scalar_subquery()
    await session.execute(
        update(Cluster)
        .where(Cluster.id.in_(found), Cluster.moving_from.is_(None))
        .values(moving_from=path_of)
        .execution_options(synchronize_session=False)
    )
    for cluster in [c for c in session.identity_map.values() if isinstance(c, Cluster)]:
        if cluster.id in found:  # a cluster the caller holds reads what was just written
            await session.refresh(cluster, ["moving_from"])
    session.info.setdefault(MOVED, set()).update(found)


async def move_clusters(session: AsyncSession, moves: Iterable[tuple[Cluster, int]]) -> None:
    """Clusters given other areas (cluster, new area id); one not yet written (a row
    earlier in the same import) is placed, not moved."""
    changing = [(cluster, area_id) for cluster, area_id in moves if cluster.area_id != area_id]
    await mark_moving(session, clusters=[c.id for c, _ in changing if c.id is not None])
    for cluster, area_id in changing:
        cluster.area_id = area_id
    await session.flush()


async def move_subtree(session: AsyncSession, *, old_prefix: str, new_prefix: str) -> None:
    """An area moved: it and every area under it take the new path, every cluster under
    it new topics."""
    if old_prefix == new_prefix:
        return
    await mark_moving(session, under=[old_prefix])
    await area_repository.repath_subtree(session, old_prefix=old_prefix, new_prefix=new_prefix)


def take_moved(session: AsyncSession) -> set[int]:
    """The clusters this transaction moved, handed to whoever tells them (once)."""
    moved: set[int] = session.info.pop(MOVED, set())
    return moved


def tell_later(session: AsyncSession) -> None:
    """The clusters this transaction moved are told by a later one: a reorganisation's
    devices step tells every cluster still moving (`moving_from` stays until each
    confirms, so none is forgotten in between)."""
    session.info.pop(MOVED, None)


@event.listens_for(GuardedSession, "before_commit")
def _refuse_untold(session: Session) -> None:
    # A savepoint's release fires this too (an import row by row): only the whole counts.
    if session.info.get(MOVED) and not session.in_nested_transaction():
        raise UntoldMove(
            f"{len(session.info[MOVED])} cluster(s) moved but not told their new areas: "
            "tell them in the same transaction (health.moving) or say who will (tell_later)"
        )
