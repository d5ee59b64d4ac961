"""SQL for broadcasts and deliveries. Set-based updates carry a state guard, so they
never move a delivery that something else has already moved."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from broadcast.models import Broadcast, Delivery, DeliveryEvent
from broadcast.states import ACTIVE, UNCONFIRMED, BroadcastStatus, DeliveryState
from core.database import Placeholder, chunked, executemany_rows, fetch_rows
from core.paging import paged
from devices import repository as device_repository
from devices.models import Cluster
from standard_warnings import repository as warning_repository

S = DeliveryState


def locked_in_id_order(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Deliveries matching `condition`, row-locked in primary-key order (PostgreSQL).

    Every writer of deliveries (ack batches, send, cancel, expiry, re-send) takes its row
    locks in the same order, so two writers wait for each other instead of deadlocking.
    SQLite has one writer at a time and ignores FOR UPDATE.
    """
    ordered = select(Delivery.id).where(condition).order_by(Delivery.id).with_for_update()
    return Delivery.id.in_(ordered.scalar_subquery())


async def aired_before(session: AsyncSession, *, media_sha256: str, broadcast_id: str) -> bool:
    """Whether another broadcast has carried this rendition (its clusters may hold it)."""
    found = await session.scalar(
        select(Broadcast.id)
        .where(Broadcast.aired_sha256 == media_sha256, Broadcast.id != broadcast_id)
        .limit(1)
    )
    return found is not None


async def held_by_clusters(session: AsyncSession, *, media_sha256: str, broadcast_id: str) -> bool:
    """Whether the clusters likely hold this audio already: a standard warning's clip (every
    cluster keeps it, docs/protocol.md 11.1), or one another broadcast carried."""
    # A repeat first: scheduled plays, most of the sends that hold their clip, ask one query.
    return await aired_before(
        session, media_sha256=media_sha256, broadcast_id=broadcast_id
    ) or await warning_repository.holds(session, media_sha256)


async def get(session: AsyncSession, broadcast_id: str) -> Broadcast | None:
    return await session.get(Broadcast, broadcast_id)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def insert_queued_deliveries(
    session: AsyncSession,
    *,
    broadcast_id: str,
    paths: Sequence[str],
    cluster_ids: Sequence[int],
    next_attempt_at: datetime,
) -> int:
    """One QUEUED delivery (first attempt) per cluster under `paths` or in `cluster_ids`,
    written by the database in one INSERT … SELECT; the number written. On the
    emergency's path: 10,000 rows built in Python and sent as parameters took 0.09 s on
    SQLite, this 0.02 s."""
    source = device_repository.targets_source(
        paths,
        cluster_ids,
        literal(broadcast_id),
        literal(S.QUEUED.value),
        literal(1),
        literal(next_attempt_at, type_=Delivery.next_attempt_at.type),
    )
    columns = ["cluster_id", "area_id", "broadcast_id", "state", "attempts", "next_attempt_at"]
    result = await session.execute(insert(Delivery).from_select(columns, source))
    assert isinstance(result, CursorResult)  # what DML returns
    return int(result.rowcount)


# An ack burst's events by the thousand: one executemany handed to the driver as it is
# (core/database.py `executemany_rows`: 7 us a row through SQLAlchemy's Core on SQLite,
# 2 us this way).
EVENT_COLUMNS = ("delivery_id", "state", "at", "device_at", "reason")


async def insert_events(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    """Rows of EVENT_COLUMNS."""
    await executemany_rows(session, _table(DeliveryEvent), EVENT_COLUMNS, rows)


async def log_transition_for_all(
    session: AsyncSession,
    *,
    broadcast_ids: Sequence[str],
    from_states: Iterable[DeliveryState],
    to_state: DeliveryState,
    at: datetime,
) -> None:
    """Record an event for every delivery about to make a set-based transition."""
    source = select(
        Delivery.id, literal(to_state.value), literal(at, type_=DeliveryEvent.at.type)
    ).where(Delivery.broadcast_id.in_(list(broadcast_ids)), Delivery.state.in_(list(from_states)))
    await session.execute(insert(DeliveryEvent).from_select(["delivery_id", "state", "at"], source))


async def move_all(
    session: AsyncSession,
    *,
    broadcast_ids: Sequence[str],
    from_states: Iterable[DeliveryState],
    to_state: DeliveryState,
    at: datetime,
    next_attempt_at: datetime | None = None,
) -> None:
    await log_transition_for_all(
        session, broadcast_ids=broadcast_ids, from_states=from_states, to_state=to_state, at=at
    )
    condition = and_(
        Delivery.broadcast_id.in_(list(broadcast_ids)), Delivery.state.in_(list(from_states))
    )
    await session.execute(
        update(Delivery)
        .where(locked_in_id_order(condition))
        .values(state=to_state, ended_at=at, next_attempt_at=next_attempt_at)
        .execution_options(synchronize_session=False)
    )


async def mark_sent(
    session: AsyncSession,
    *,
    delivery_ids: Sequence[int] | None,
    broadcast_id: str | None,
    at: datetime,
) -> None:
    """Record that the broker took the command: QUEUED -> SENT, and `sent_at` on rows an
    ack has already moved on (acks can overtake this update)."""
    values = {
        "state": case((Delivery.state == S.QUEUED, S.SENT.value), else_=Delivery.state),
        "sent_at": func.coalesce(Delivery.sent_at, at),
    }
    if broadcast_id is not None:
        await session.execute(
            update(Delivery)
            .where(locked_in_id_order(Delivery.broadcast_id == broadcast_id))
            .values(values)
            .execution_options(synchronize_session=False)
        )
    for chunk in chunked(list(delivery_ids or []), 1):
        await session.execute(
            update(Delivery)
            .where(locked_in_id_order(Delivery.id.in_(chunk)))
            .values(values)
            .execution_options(synchronize_session=False)
        )


async def tally(session: AsyncSession, broadcast_id: str) -> Sequence[Row[str, str, int, int]]:
    """(area path, state, deliveries, stops confirmed): everything the progress view counts,
    in one pass over the broadcast's deliveries. The path is of the area each cluster stood
    in when the broadcast was sent."""
    query = (
        select(Area.path, Delivery.state, func.count(), func.count(Delivery.stop_confirmed_at))
        .join(Area, Delivery.area_id == Area.id)
        .where(Delivery.broadcast_id == broadcast_id)
        .group_by(Area.path, Delivery.state)
    )
    return (await session.execute(query)).all()


async def unconfirmed(
    session: AsyncSession, broadcast_id: str, *, limit: int
) -> Sequence[Row[str, str, str, int, bool, datetime | None]]:
    if limit == 0:
        return []
    condition = and_(Delivery.broadcast_id == broadcast_id, Delivery.state.in_(list(UNCONFIRMED)))
    query = (
        select(
            Cluster.code,
            Area.code,
            Delivery.state,
            Delivery.attempts,
            Cluster.online,
            Cluster.last_seen_at,
        )
        .join(Cluster, Delivery.cluster_id == Cluster.id)
        .join(Area, Delivery.area_id == Area.id)
        .where(condition)
        .order_by(Area.path, Cluster.code)
        .limit(limit)
    )
    return (await session.execute(query)).all()


async def list_page(
    session: AsyncSession, *, status: str | None, limit: int, offset: int
) -> tuple[list[Broadcast], int]:
    query = select(Broadcast)
    if status is not None:
        query = query.where(Broadcast.status == status)
    rows, total = await paged(
        session, query.order_by(Broadcast.created_at.desc()), limit=limit, offset=offset
    )
    return [broadcast for (broadcast,) in rows], total


async def due_for_resend(
    session: AsyncSession, *, now: datetime, limit: int
) -> Sequence[Row[Delivery, str, Broadcast]]:
    """Deliveries whose retry time has come: not yet confirmed, confirmed but silent past
    the media's end, or cancelled without the cluster confirming it stopped."""
    active_play = and_(Delivery.state.in_(list(ACTIVE)), Broadcast.status == BroadcastStatus.ACTIVE)
    pending_stop = and_(Delivery.state == S.CANCELED, Delivery.stop_confirmed_at.is_(None))
    query = (
        select(Delivery, Cluster.code, Broadcast)
        .join(Cluster, Delivery.cluster_id == Cluster.id)
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .where(
            Delivery.next_attempt_at <= now,
            Broadcast.expires_at > now,
            or_(active_play, pending_stop),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    return (await session.execute(query)).all()


async def update_columns(session: AsyncSession, changes: list[tuple[int, dict[str, Any]]]) -> None:
    """Write only what changed, one executemany per set of changed columns (a burst of
    the same stage is one statement), by primary key."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for delivery_id, values in sorted(changes, key=lambda c: c[0]):
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append({"_id": delivery_id, **values})
    table = _table(Delivery)
    for columns, rows in groups.items():
        statement = (
            table.update()
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns})
        )
        await session.execute(statement, rows)


# What an ack batch needs of each delivery it speaks of, in this order (`acknowledged`).
ACK_DELIVERY_COLUMNS = (
    "state",
    "delivered_at",
    "playing_at",
    "played_at",
    "ended_at",
    "reason",
    "next_attempt_at",
    "stop_confirmed_at",
)
ACK_BROADCAST_COLUMNS = (
    "command_id",
    "cancel_command_id",
    "expires_at",
    "repeat",
    "stream_url",
    "stream_ends_at",
    "created_at",
)
_ACK_ROW = (
    "d.id",
    "d.broadcast_id",
    "c.code",
    *(f"d.{c}" for c in ACK_DELIVERY_COLUMNS),
    *(f"b.{c}" for c in ACK_BROADCAST_COLUMNS),
    "m.duration_ms",
)
_ACK_ROW_TIMES = tuple(i for i, name in enumerate(_ACK_ROW) if name.endswith("_at"))


async def acknowledged(
    session: AsyncSession, *, broadcast_ids: Sequence[str], cluster_codes: Sequence[str]
) -> list[tuple[Any, ...]]:
    """(id, broadcast id, cluster code, ACK_DELIVERY_COLUMNS, ACK_BROADCAST_COLUMNS, the
    clip's duration_ms) of each delivery of these broadcasts to these clusters, row-locked
    in id order (PostgreSQL: replicas serialise per delivery).

    Found by (broadcast, cluster id) through the unique index: matched on the cluster's
    code after the join instead, SQLite walked every delivery of the broadcast for each
    batch (10,000 rows at ten thousand clusters: a batch of 50 took 3.5 ms of CPU, now
    1.5). Read through the driver (core/database.py `fetch_rows`): SQLAlchemy's reading of
    a row (nine UTCDateTime columns) cost 11 us of CPU, the query itself about 3."""

    def sql(mark: Placeholder, dialect: str) -> str:
        n = len(broadcast_ids)
        broadcasts = ", ".join(mark(i) for i in range(1, n + 1))
        codes = ", ".join(mark(i) for i in range(n + 1, n + len(cluster_codes) + 1))
        lock = " FOR UPDATE OF d" if dialect == "postgresql" else ""
        return (
            f"SELECT {', '.join(_ACK_ROW)} FROM deliveries AS d "
            "JOIN clusters AS c ON d.cluster_id = c.id "
            "JOIN broadcasts AS b ON d.broadcast_id = b.id "
            "LEFT OUTER JOIN media_files AS m ON b.media_sha256 = m.sha256 "
            f"WHERE d.broadcast_id IN ({broadcasts}) "
            f"AND d.cluster_id IN (SELECT id FROM clusters WHERE code IN ({codes})) "
            f"ORDER BY d.id{lock}"
        )

    return await fetch_rows(session, sql, [*broadcast_ids, *cluster_codes], times=_ACK_ROW_TIMES)


async def update_acknowledged(
    session: AsyncSession, changes: list[tuple[int, dict[str, Any]]]
) -> None:
    """The ack path's `update_columns`: the same statements, in id order, handed to the
    driver as they are (core/database.py `executemany_rows`): 11 us a row through
    SQLAlchemy's Core on SQLite, 3 us this way."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for delivery_id, values in sorted(changes, key=lambda c: c[0]):
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append((*(values[c] for c in columns), delivery_id))
    table = _table(Delivery)
    for columns, rows in groups.items():
        await executemany_rows(session, table, columns, rows, where_id=True)


async def resend_soon_for_clusters(
    session: AsyncSession, *, cluster_ids: Sequence[int], at: datetime
) -> None:
    """A cluster came back online: whatever it still owes an answer for goes out now."""
    for chunk in chunked(list(cluster_ids), 1):
        await session.execute(
            update(Delivery)
            .where(
                locked_in_id_order(
                    and_(
                        Delivery.cluster_id.in_(chunk),
                        Delivery.next_attempt_at.is_not(None),
                        or_(
                            Delivery.state.in_(list(UNCONFIRMED)),
                            and_(
                                Delivery.state == S.CANCELED, Delivery.stop_confirmed_at.is_(None)
                            ),
                        ),
                    )
                )
            )
            .values(next_attempt_at=at)
            .execution_options(synchronize_session=False)
        )


async def expired_active(session: AsyncSession, *, now: datetime) -> list[Broadcast]:
    query = select(Broadcast).where(
        Broadcast.status == BroadcastStatus.ACTIVE, Broadcast.expires_at <= now
    )
    return list((await session.execute(query)).scalars())


async def stop_retrying_expired_cancels(session: AsyncSession, *, now: datetime) -> None:
    """A cancelled broadcast past its expiry needs no more stop confirmations."""
    expired_cancels = (
        select(Broadcast.id)
        .where(Broadcast.status == BroadcastStatus.CANCELED, Broadcast.expires_at <= now)
        .scalar_subquery()
    )
    await session.execute(
        update(Delivery)
        .where(
            locked_in_id_order(
                and_(
                    Delivery.next_attempt_at.is_not(None),
                    Delivery.broadcast_id.in_(expired_cancels),
                )
            )
        )
        .values(next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
