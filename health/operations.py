"""Remote operations for technicians (docs/protocol.md section 4.6): one signed command to
a cluster or a whole area, and each cluster's answer, acknowledged like a broadcast.

Written before it is published (as broadcasts are), so no answer can arrive for an
operation we do not know; answered `received` (accepted), then `done` or `failed`;
clusters that never answered are `expired` when the operation expires.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from authority import Deed, authorise
from broadcast import service as broadcast_service
from broadcast.commands import MediaSet, Publication, media_ref, url_signer
from core.actors import Actor
from core.backoff import resend_delay_s
from core.errors import InvalidInput, NotFound
from core.ingest_stats import IngestStats
from core.settings import Settings
from devices.inbound import Inbound
from devices.models import Cluster
from health.models import Operation, OperationResult
from health.schemas import OperationCreate, OperationRead, OperationResultRead
from media.models import MediaFile
from wire import media_auth, protocol
from wire.protocol import (
    WARNING_NOT_HELD_PREFIX,
    Ack,
    AckStage,
    Command,
    CommandKind,
    OperationParams,
    Target,
)

OP_PREFIX = "op-"  # operation ids: acknowledgements naming one are routed here
SET_AREAS_VALID = timedelta(days=7)  # a device off for days is told when it is back


class OperationState(StrEnum):
    """One cluster's answer to an operation so far (OperationResult.state)."""

    SENT = "sent"  # no answer yet
    ACCEPTED = "accepted"  # the cluster has it, not yet carried out
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"  # never answered before the operation expired


FINAL = frozenset(
    {OperationState.DONE, OperationState.FAILED, OperationState.REJECTED, OperationState.EXPIRED}
)
AWAITING = (OperationState.SENT, OperationState.ACCEPTED)  # no final answer yet
# What each answer makes of a result; later stages win, a final one stays.
_STAGE_STATE = {
    AckStage.RECEIVED: OperationState.ACCEPTED,
    AckStage.DONE: OperationState.DONE,
    AckStage.FAILED: OperationState.FAILED,
    AckStage.REJECTED: OperationState.REJECTED,
}
_REQUIRED = {
    CommandKind.SET_VOLUME: "volume",
    CommandKind.AMPLIFIER: "on",
    CommandKind.TUNE_FM: "frequency_khz",
}


class OperationNotFound(NotFound):
    def __init__(self, operation_id: str) -> None:
        super().__init__(
            f"operation {operation_id!r} not found", detail={"operation": operation_id}
        )


def is_operation(broadcast_field: str) -> bool:
    return broadcast_field.startswith(OP_PREFIX)


@dataclass(frozen=True)
class Created:
    operation: Operation
    publications: list[Publication]
    total: int


async def create(
    *,
    session: AsyncSession,
    settings: Settings,
    data: OperationCreate,
    actor: Actor,
    now: datetime,
    media_sha256: str | None = None,
) -> Created:
    """Write the operation and a `sent` result per cluster, if the actor may command
    these clusters (authority: a test tone sounds, volume and amplifier change what is
    heard); the commands to publish after the commit (one per targeted area, one per
    cluster named on its own)."""
    await authorise(session, actor, Deed.OPERATE, areas=data.areas, clusters=data.clusters)
    field = _REQUIRED.get(CommandKind(data.kind.value))
    if field is not None and getattr(data.params, field) is None:
        raise InvalidInput(
            f"{data.kind.value} needs params.{field}", detail={"field": f"params.{field}"}
        )
    cover, extra, targets = await broadcast_service.resolve_targets(
        session, data.areas, data.clusters
    )
    if not targets:
        raise InvalidInput("no clusters under the given targets", detail={"field": "areas"})
    return await write(
        session=session,
        settings=settings,
        kind=data.kind.value,
        params=data.params.model_dump(exclude_none=True),
        target_areas=[a.code for a in cover],
        target_clusters=extra,
        cluster_ids=targets,
        actor=actor.name,
        now=now,
        expires_at=now + timedelta(seconds=data.expires_in_s),
        media_sha256=media_sha256,
    )


async def write(
    *,
    session: AsyncSession,
    settings: Settings,
    kind: str,
    params: dict[str, Any],
    target_areas: list[str],
    target_clusters: list[str],
    cluster_ids: Iterable[int],
    actor: str,
    now: datetime,
    expires_at: datetime,
    media_sha256: str | None = None,
) -> Created:
    """An operation already resolved to its clusters (a rollout names them one by one)."""
    operation = Operation(
        id=f"{OP_PREFIX}{uuid.uuid4()}",
        kind=kind,
        params=params,
        target_areas=target_areas,
        target_clusters=target_clusters,
        requested_by=actor,
        created_at=now,
        expires_at=expires_at,
        media_sha256=media_sha256,
    )
    session.add(operation)
    await session.flush()
    table = OperationResult.__table__
    assert isinstance(table, Table)
    rows = [
        {
            "operation_id": operation.id,
            "cluster_id": cid,
            "state": OperationState.SENT,
            "updated_at": now,
        }
        for cid in sorted(set(cluster_ids))
    ]
    await session.execute(insert(table), rows)
    media = await session.get(MediaFile, media_sha256) if media_sha256 else None
    return Created(operation, publications(operation, media, settings), len(rows))


async def tell_new_areas(
    *,
    session: AsyncSession,
    settings: Settings,
    actor: str,
    now: datetime,
    codes: Sequence[str] | None = None,
    ids: Iterable[int] | None = None,
) -> list[Publication]:
    """Every cluster still listening on its old topics (`moving_from`: a reorganisation,
    or a move in the register), or those of `codes` or `ids`, is told its areas and media
    key, one signed set_areas each, unless the same areas are already on their way; it
    subscribes to the new topics before it leaves the old (docs/protocol.md 4.6). One on
    its way with areas the cluster no longer has (it moved again before answering) is
    expired, so its late `done` settles nothing. The commands to publish after the commit
    (the sweep re-sends them until answered)."""
    query = (
        select(Cluster.id, Cluster.code, Area.path)
        .join(Area, Cluster.area_id == Area.id)
        .where(Cluster.moving_from.is_not(None))
        .order_by(Cluster.code)
    )
    if codes is not None:
        query = query.where(Cluster.code.in_(list(codes)))
    if ids is not None:
        query = query.where(Cluster.id.in_(list(ids)))
    moving = (await session.execute(query)).all()
    chosen = codes is not None or ids is not None
    pending = await _set_areas_on_their_way(
        session, [cid for cid, _, _ in moving] if chosen else None, now
    )
    told: list[Publication] = []
    stale: list[int] = []
    for cluster_id, code, path in moving:
        areas = [a for a in path.split("/") if a]
        on_their_way = pending.get(cluster_id, [])
        if any(sent == areas for _, sent in on_their_way):
            continue
        stale += [result_id for result_id, _ in on_their_way]
        key = media_auth.device_key(settings.media_signing_key, code, "/".join(areas))
        created = await write(
            session=session,
            settings=settings,
            kind=CommandKind.SET_AREAS.value,
            params={"areas": areas, "media_key": key},
            target_areas=[],
            target_clusters=[code],
            cluster_ids=[cluster_id],
            actor=actor,
            now=now,
            expires_at=now + SET_AREAS_VALID,
        )
        told += created.publications
    if stale:
        await session.execute(
            update(OperationResult)
            .where(OperationResult.id.in_(stale))
            .values(state=OperationState.EXPIRED, reason="moved again", updated_at=now)
        )
    return told


async def _set_areas_on_their_way(
    session: AsyncSession, cluster_ids: list[int] | None, now: datetime
) -> dict[int, list[tuple[int, list[str]]]]:
    """Per cluster (these, or every one moving), the set_areas not answered yet: (result
    id, the areas it names)."""
    query = (
        select(OperationResult.cluster_id, OperationResult.id, Operation.params)
        .join(Operation, OperationResult.operation_id == Operation.id)
        .where(
            Operation.kind == CommandKind.SET_AREAS.value,
            OperationResult.state.in_(AWAITING),
            Operation.expires_at > now,
        )
    )
    if cluster_ids is None:
        moving = select(Cluster.id).where(Cluster.moving_from.is_not(None))
        query = query.where(OperationResult.cluster_id.in_(moving))
    elif cluster_ids:
        query = query.where(OperationResult.cluster_id.in_(cluster_ids))
    else:
        return {}
    rows = await session.execute(query)
    pending: dict[int, list[tuple[int, list[str]]]] = {}
    for cluster_id, result_id, params in rows.all():
        pending.setdefault(cluster_id, []).append((result_id, list(params.get("areas", []))))
    return pending


def publications(
    operation: Operation, media: MediaFile | None, settings: Settings
) -> list[Publication]:
    targets = [
        (protocol.area_command_topic(code), Target(area=code)) for code in operation.target_areas
    ] + [
        (protocol.cluster_command_topic(code), Target(cluster=code))
        for code in operation.target_clusters
    ]
    return [(topic, _command(operation, target, media, settings)) for topic, target in targets]


def _command(
    operation: Operation, target: Target, media: MediaFile | None, settings: Settings
) -> Command:
    url_for = url_signer(settings.media_url, operation.expires_at)
    params = dict(operation.params)
    if "firmware" in params:  # fetched like media: a URL good for this target only
        params["url"] = url_for(params["firmware"]["sha256"], target)
    return Command.model_validate(
        {
            # The operation id is the command id too: a re-send is a repeat the device
            # answers with where it stands, never a second reboot.
            "id": operation.id,
            "kind": operation.kind,
            "broadcast": operation.id,
            "class": protocol.CommandClass.PRIORITY,
            "level": protocol.SenderLevel.PROVINCE,
            "issued_at": operation.created_at,
            "expires_at": operation.expires_at,
            "target": target,
            "title": operation.kind,
            "op": OperationParams.model_validate(params),
            "media": media_ref(MediaSet(media), target, url_for) if media else None,
        }
    )


async def apply_acks(
    session: AsyncSession, acks: list[tuple[Inbound, Ack]], stats: IngestStats
) -> set[str]:
    """Each cluster's answer moves its result on (accepted, then done / failed); a final
    state stays; answers to operations we do not know are refused, counted. The clusters
    whose self-test found a standard warning not held: their documents are to be pushed
    anew (their digests are cleared here)."""
    ids = {ack.broadcast for _, ack in acks}
    codes = {ack.cluster for _, ack in acks}
    rows = await session.execute(
        select(
            OperationResult.id,
            OperationResult.operation_id,
            Cluster.code,
            OperationResult.state,
            Operation.kind,
        )
        .join(Cluster, OperationResult.cluster_id == Cluster.id)
        .join(Operation, OperationResult.operation_id == Operation.id)
        .where(OperationResult.operation_id.in_(ids), Cluster.code.in_(codes))
    )
    results: dict[tuple[str, str], tuple[int, str]] = {}
    kinds: dict[str, str] = {}
    for rid, op, code, current, kind in rows.all():
        results[(op, code)] = (rid, current)
        kinds[op] = kind
    settled: set[str] = set()  # clusters that confirmed their new areas
    unheld: set[str] = set()  # clusters missing a standard warning they could not fetch
    changes: dict[int, dict[str, Any]] = {}
    for item, ack in acks:
        found = results.get((ack.broadcast, ack.cluster))
        state = _STAGE_STATE.get(ack.stage)
        if found is None or state is None:
            item.refuse(
                stats, "unknown_operation", f"{ack.cluster}: {ack.stage.value} for {ack.broadcast}"
            )
            continue
        stats.count("operation_acks")
        result_id, current = found
        if current in FINAL or current == state:
            continue
        results[(ack.broadcast, ack.cluster)] = (result_id, state)
        if state == OperationState.DONE and kinds[ack.broadcast] == CommandKind.SET_AREAS.value:
            settled.add(ack.cluster)
        if _warning_not_held(state, kinds[ack.broadcast], ack.reason):
            unheld.add(ack.cluster)
        changes[result_id] = {
            "p_id": result_id,
            "p_state": state,
            "p_reason": ack.reason,
            "p_at": item.received_at,
        }
    if changes:
        table = OperationResult.__table__
        assert isinstance(table, Table)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("p_id"))
            .values(
                state=bindparam("p_state"),
                reason=bindparam("p_reason"),
                updated_at=bindparam("p_at"),
            ),
            list(changes.values()),
        )
    if settled:  # listening on its new areas' topics: broadcasts need not name it any more
        await session.execute(
            update(Cluster).where(Cluster.code.in_(settled)).values(moving_from=None)
        )
    if unheld:
        # Most likely its document's grants ran out before it could fetch the file again:
        # forgetting the digest makes the next push send it a new document with fresh
        # grants, as after a failed publish (schedules/push.py; docs/protocol.md 11.1).
        await session.execute(
            update(Cluster).where(Cluster.code.in_(unheld)).values(schedule_digest=None)
        )
    return unheld


def _warning_not_held(state: OperationState, kind: str, reason: str | None) -> bool:
    """A self-test failed because a standard warning is missing or damaged on the cluster."""
    return (
        state == OperationState.FAILED
        and kind == CommandKind.SELF_TEST.value
        and (reason or "").startswith(WARNING_NOT_HELD_PREFIX)
    )


async def expire(session: AsyncSession, *, now: datetime) -> None:
    """Clusters that never finished an operation before it expired: `expired`. Reads
    first: this runs every tick, and a write every tick would contend for SQLite's one
    writer with the API for nothing."""
    due = select(Operation.id).where(Operation.expires_at <= now)
    open_results = (
        select(OperationResult.id)
        .where(
            OperationResult.operation_id.in_(due),
            OperationResult.state.in_(AWAITING),
        )
        .limit(1)
    )
    if await session.scalar(open_results) is None:
        return
    await session.execute(
        update(OperationResult)
        .where(
            OperationResult.operation_id.in_(due),
            OperationResult.state.in_(AWAITING),
        )
        .values(state=OperationState.EXPIRED, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def read(*, session: AsyncSession, operation_id: str) -> OperationRead:
    operation = await session.get(Operation, operation_id)
    if operation is None:
        raise OperationNotFound(operation_id)
    rows = await session.execute(
        select(
            Cluster.code, OperationResult.state, OperationResult.reason, OperationResult.updated_at
        )
        .join(Cluster, OperationResult.cluster_id == Cluster.id)
        .where(OperationResult.operation_id == operation_id)
        .order_by(Cluster.code)
    )
    results = [
        OperationResultRead(cluster=code, state=state, reason=reason, updated_at=at)
        for code, state, reason, at in rows.all()
    ]
    return OperationRead(
        id=operation.id,
        kind=operation.kind,
        params=operation.params,
        requested_by=operation.requested_by,
        created_at=operation.created_at,
        expires_at=operation.expires_at,
        total=len(results),
        counts=dict(Counter(r.state for r in results)),
        results=results,
    )


RESEND_BATCH = 2000  # results re-sent per tick at most; the rest wait for the next one


async def resend_unanswered(
    session: AsyncSession, *, now: datetime, settings: Settings
) -> list[Publication]:
    """Commands no cluster has answered yet (published while the broker was down, lost,
    or sent to a cluster that was off), again to each such cluster on its own topic, with
    backoff, until the operation expires. The same id: a cluster that did get it answers
    where it stands and does nothing twice."""
    earliest = now - timedelta(seconds=settings.resend_base_s)
    rows = (
        await session.execute(
            select(
                OperationResult.id,
                OperationResult.attempts,
                OperationResult.updated_at,
                Operation.id,
                Cluster.code,
            )
            .join(Operation, OperationResult.operation_id == Operation.id)
            .join(Cluster, OperationResult.cluster_id == Cluster.id)
            .where(
                OperationResult.state == OperationState.SENT,
                OperationResult.updated_at <= earliest,
                Operation.expires_at > now,
                # Not into the void: a cluster that is back is sent it at the next tick.
                Cluster.online.is_(True),
            )
            .order_by(OperationResult.updated_at)
            .limit(RESEND_BATCH)
        )
    ).all()
    due = [
        (rid, attempts, op_id, code)
        for rid, attempts, at, op_id, code in rows
        if at <= now - timedelta(seconds=resend_delay_s(attempts, settings))
    ]
    if not due:
        return []
    operations = {
        op.id: op
        for op in (
            await session.scalars(select(Operation).where(Operation.id.in_({d[2] for d in due})))
        ).all()
    }
    media: dict[str, MediaFile | None] = {}
    for op in operations.values():
        if op.media_sha256 and op.media_sha256 not in media:
            media[op.media_sha256] = await session.get(MediaFile, op.media_sha256)
    table = OperationResult.__table__
    assert isinstance(table, Table)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("p_id"))
        .values(attempts=bindparam("p_attempts"), updated_at=now),
        [{"p_id": rid, "p_attempts": attempts + 1} for rid, attempts, _, _ in due],
    )
    publications: list[Publication] = []
    for _, _, op_id, code in due:
        op = operations[op_id]
        clip = media.get(op.media_sha256) if op.media_sha256 else None
        target = Target(cluster=code)
        publications.append(
            (protocol.cluster_command_topic(code), _command(op, target, clip, settings))
        )
    return publications
