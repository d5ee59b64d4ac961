"""Staged firmware rollouts (docs/protocol.md section 4.7).

A rollout takes one firmware version to a set of clusters in waves. Clusters are put in
waves when it is created, spread across communes (the first 5% is a cluster or two in
many communes, not one commune's every cluster). A job (`advance`) then, every tick:

1. reads the answers: each install is an operation (health/operations.py) whose result
   decides the cluster's state; an install not answered before its timeout failed (a
   cluster that never comes back is exactly what a rollout must stop for);
2. aborts when more than `abort_failure_pct` of the installs finished since it was
   started (or resumed) failed, once at least `abort_min_finished` have;
3. sends the current wave's pending clusters that are online, at most `per_minute` in
   any minute; offline ones wait for their link and do not hold the next wave back, once
   the wave has at least one outcome: a wave none of whose clusters could be reached yet
   is no evidence that the image is good, so it waits rather than widen an untried image;
4. moves to the next wave when nothing of the current one is pending-online or under
   way (or pauses for a person, with `pause_between_waves`), and completes when every
   cluster has an outcome.

What has been sent cannot be called back: pausing, aborting or cancelling stops further
sends, and the installs already under way are still followed to their outcome.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authority import Deed, authorise
from broadcast import service as broadcast_service
from broadcast.commands import Publication
from core.actors import Actor
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import Settings
from devices.models import Cluster
from firmware import images
from firmware.models import FirmwareImage, Rollout, RolloutCluster
from firmware.schemas import RolloutClusterRead, RolloutCreate, RolloutRead, Wave, WaveRead
from health import operations
from health.models import ClusterHealth, OperationResult
from wire.protocol import CommandKind


class RolloutState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # by a person, or between waves when asked to
    ABORTED = "aborted"  # too many installs failed
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class InstallState(StrEnum):
    """One cluster's place in a rollout (RolloutCluster.state)."""

    PENDING = "pending"
    SENT = "sent"
    INSTALLING = "installing"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # already on the version, or another model
    CANCELLED = "cancelled"


IN_FLIGHT = (InstallState.SENT, InstallState.INSTALLING)
FINAL = frozenset(
    {InstallState.DONE, InstallState.FAILED, InstallState.SKIPPED, InstallState.CANCELLED}
)
# Rollouts that may still have installs under way.
ACTIVE = (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.ABORTED)
RATE_WINDOW = timedelta(minutes=1)
# An operation's result, as the rollout reads it.
_FROM_OPERATION: dict[str, InstallState] = {
    operations.OperationState.ACCEPTED: InstallState.INSTALLING,
    operations.OperationState.DONE: InstallState.DONE,
    operations.OperationState.FAILED: InstallState.FAILED,
    operations.OperationState.REJECTED: InstallState.FAILED,
}
NO_ANSWER = "no answer before the install timeout"


class RolloutNotFound(NotFound):
    def __init__(self, rollout_id: int) -> None:
        super().__init__(f"rollout {rollout_id} not found", detail={"rollout": rollout_id})


def plan_waves(clusters: list[tuple[int, int, str]], waves: list[Wave]) -> list[list[int]]:
    """Cluster ids per wave, from (cluster id, area id, code): communes take turns, so
    each wave reaches as many communes as its size allows; the last wave takes the rest
    and waves left empty are dropped."""
    by_area: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for cid, area_id, code in clusters:
        by_area[area_id].append((code, cid))
    queues = [sorted(items) for _, items in sorted(by_area.items())]
    order: list[int] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        order.extend(q[rank][1] for q in queues if rank < len(q))
    total, planned, start = len(order), [], 0
    for index, wave in enumerate(waves):
        last = index == len(waves) - 1
        if last:
            size = total - start
        elif wave.count is not None:
            size = wave.count
        else:
            size = math.ceil(total * (wave.percent or 0) / 100)
        size = min(size, total - start)
        if size > 0:
            planned.append(order[start : start + size])
            start += size
    return planned


async def create(
    *,
    session: AsyncSession,
    data: RolloutCreate,
    actor: Actor,
    now: datetime,
) -> Rollout:
    await authorise(session, actor, Deed.ROLLOUT, areas=data.areas, clusters=data.clusters)
    image = await images.get(session, data.firmware)
    images.check_approved(image)
    _, _, targets = await broadcast_service.resolve_targets(session, data.areas, data.clusters)
    if not targets:
        raise InvalidInput("no clusters under the given targets", detail={"field": "areas"})
    rows = (
        await session.execute(
            select(
                Cluster.id,
                Cluster.code,
                Cluster.kind,
                Cluster.model,
                func.coalesce(ClusterHealth.firmware, Cluster.firmware),
            )
            .outerjoin(ClusterHealth, ClusterHealth.cluster_id == Cluster.id)
            .where(Cluster.id.in_(targets))
        )
    ).all()
    skipped: dict[int, str] = {}
    eligible: list[tuple[int, int, str]] = []
    for cid, code, kind, model, firmware in rows:
        if kind != data.kind.value:
            skipped[cid] = f"{kind}: this rollout is for {data.kind.value}"
        elif firmware == image.version:
            skipped[cid] = f"already on {image.version}"
        elif image.model and model != image.model:
            skipped[cid] = f"model {model or 'unknown'}, image is for {image.model}"
        else:
            eligible.append((cid, targets[cid], code))
    waves = plan_waves(eligible, data.waves)
    rollout = Rollout(
        firmware_version=image.version,
        state=RolloutState.RUNNING if waves else RolloutState.COMPLETED,
        reason="" if waves else "every targeted cluster was skipped",
        waves=max(1, len(waves)),
        current_wave=1,
        per_minute=data.per_minute,
        abort_failure_pct=data.abort_failure_pct,
        abort_min_finished=data.abort_min_finished,
        pause_between_waves=data.pause_between_waves,
        target_areas=list(data.areas),
        target_clusters=list(data.clusters),
        created_by=actor.name,
        created_at=now,
        counted_from=now,
        finished_at=None if waves else now,
    )
    session.add(rollout)
    await session.flush()
    table = RolloutCluster.__table__
    assert isinstance(table, Table)
    values: list[dict[str, Any]] = [
        {"cluster_id": cid, "wave": number, "state": InstallState.PENDING, "reason": None}
        for number, ids in enumerate(waves, start=1)
        for cid in ids
    ] + [
        {"cluster_id": cid, "wave": 1, "state": InstallState.SKIPPED, "reason": why}
        for cid, why in skipped.items()
    ]
    await session.execute(
        insert(table), [{**v, "rollout_id": rollout.id, "updated_at": now} for v in values]
    )
    return rollout


async def advance(session: AsyncSession, *, now: datetime, settings: Settings) -> list[Publication]:
    """One tick of every rollout (a job); the commands to publish after the commit."""
    rollouts = (await session.scalars(select(Rollout).where(Rollout.state.in_(ACTIVE)))).all()
    publications: list[Publication] = []
    for rollout in rollouts:
        await _read_answers(session, rollout, now)
        if rollout.state == RolloutState.RUNNING:
            publications += await _step(session, rollout, now=now, settings=settings)
    return publications


async def _read_answers(session: AsyncSession, rollout: Rollout, now: datetime) -> None:
    rows = (
        await session.execute(
            select(
                RolloutCluster.id,
                RolloutCluster.cluster_id,
                RolloutCluster.state,
                OperationResult.state,
                OperationResult.reason,
            )
            .join(
                OperationResult,
                (OperationResult.operation_id == RolloutCluster.operation_id)
                & (OperationResult.cluster_id == RolloutCluster.cluster_id),
            )
            .where(RolloutCluster.rollout_id == rollout.id, RolloutCluster.state.in_(IN_FLIGHT))
        )
    ).all()
    changes, installed = [], []
    for rc_id, cluster_id, current, op_state, op_reason in rows:
        state = (
            InstallState.FAILED
            if op_state == operations.OperationState.EXPIRED
            else _FROM_OPERATION.get(op_state)
        )
        if state is None or state == current:
            continue
        reason = NO_ANSWER if op_state == operations.OperationState.EXPIRED else op_reason
        changes.append({"p_id": rc_id, "p_state": state, "p_reason": reason})
        if state == InstallState.DONE:
            installed.append(cluster_id)
    if installed:
        # The register says what the cluster runs now (it said the old version while the
        # health view showed the new one, issue 20).
        await session.execute(
            update(Cluster)
            .where(Cluster.id.in_(installed))
            .values(firmware=rollout.firmware_version)
        )
    if changes:
        table = RolloutCluster.__table__
        assert isinstance(table, Table)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("p_id"))
            .values(state=bindparam("p_state"), reason=bindparam("p_reason"), updated_at=now),
            changes,
        )


async def _step(
    session: AsyncSession, rollout: Rollout, *, now: datetime, settings: Settings
) -> list[Publication]:
    judged = dict(
        (
            await session.execute(
                select(RolloutCluster.state, func.count())
                .where(
                    RolloutCluster.rollout_id == rollout.id,
                    RolloutCluster.state.in_((InstallState.DONE, InstallState.FAILED)),
                    RolloutCluster.updated_at >= rollout.counted_from,
                )
                .group_by(RolloutCluster.state)
            )
        ).all()
    )
    failed, finished = (
        judged.get(InstallState.FAILED, 0),
        judged.get(InstallState.DONE, 0) + judged.get(InstallState.FAILED, 0),
    )
    if (
        finished >= rollout.abort_min_finished
        and failed * 100 > rollout.abort_failure_pct * finished
    ):
        rollout.state = RolloutState.ABORTED
        rollout.reason = (
            f"{failed} of {finished} installs failed ({100 * failed / finished:.0f}%, more "
            f"than {rollout.abort_failure_pct}%)"
        )
        return []
    publications = await _send(session, rollout, now=now, settings=settings)
    if publications:
        return publications
    by_state = await _wave_states(session, rollout)
    current = by_state.get(rollout.current_wave, Counter())
    if current["pending_online"] or any(current[s] for s in IN_FLIGHT):
        return []
    waiting = f"wave {rollout.current_wave}: waiting for its clusters to come online"
    if current["pending_offline"] and not (
        current[InstallState.DONE] or current[InstallState.FAILED]
    ):
        rollout.reason = waiting  # nothing of this wave heard from: no evidence yet
        return []
    if rollout.reason == waiting:
        rollout.reason = ""
    if rollout.current_wave < rollout.waves:
        if rollout.pause_between_waves:
            rollout.state = RolloutState.PAUSED
            rollout.reason = (
                f"wave {rollout.current_wave} finished: resume to start wave "
                f"{rollout.current_wave + 1}"
            )
        rollout.current_wave += 1
        return []
    if all(state in FINAL for wave in by_state.values() for state, n in wave.items() if n):
        rollout.state, rollout.finished_at = RolloutState.COMPLETED, now
        rollout.reason = ""
    return []


async def _wave_states(session: AsyncSession, rollout: Rollout) -> dict[int, Counter[str]]:
    """Per wave, clusters by state, with pending ones told apart by their link."""
    rows = await session.execute(
        select(RolloutCluster.wave, RolloutCluster.state, Cluster.online, func.count())
        .join(Cluster, Cluster.id == RolloutCluster.cluster_id)
        .where(RolloutCluster.rollout_id == rollout.id)
        .group_by(RolloutCluster.wave, RolloutCluster.state, Cluster.online)
    )
    waves: dict[int, Counter[str]] = defaultdict(Counter)
    for wave, state, online, count in rows.all():
        if state == InstallState.PENDING:
            state = "pending_online" if online else "pending_offline"
        waves[wave][state] += count
    return waves


async def _send(
    session: AsyncSession, rollout: Rollout, *, now: datetime, settings: Settings
) -> list[Publication]:
    """The next installs of the current (and any earlier) wave, within the rate."""
    started = await session.scalar(
        select(func.count()).where(
            RolloutCluster.rollout_id == rollout.id, RolloutCluster.sent_at > now - RATE_WINDOW
        )
    )
    budget = rollout.per_minute - int(started or 0)
    if budget <= 0:
        return []
    due = (
        await session.execute(
            select(RolloutCluster.id, Cluster.id, Cluster.code)
            .join(Cluster, Cluster.id == RolloutCluster.cluster_id)
            .where(
                RolloutCluster.rollout_id == rollout.id,
                RolloutCluster.state == InstallState.PENDING,
                RolloutCluster.wave <= rollout.current_wave,
                Cluster.online.is_(True),
            )
            .order_by(RolloutCluster.wave, RolloutCluster.id)
            .limit(budget)
        )
    ).all()
    if not due:
        return []
    image = await session.get(FirmwareImage, rollout.firmware_version)
    assert image is not None  # a rollout's image cannot be deleted
    created = await operations.write(
        session=session,
        settings=settings,
        kind=CommandKind.FIRMWARE_UPDATE.value,
        params={"firmware": images.manifest(image).model_dump(exclude_none=True)},
        target_areas=[],
        target_clusters=sorted(code for _, _, code in due),
        cluster_ids=[cid for _, cid, _ in due],
        actor=f"rollout {rollout.id}",
        now=now,
        expires_at=now + timedelta(seconds=settings.firmware_install_timeout_s),
    )
    table = RolloutCluster.__table__
    assert isinstance(table, Table)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("p_id"))
        .values(
            state=InstallState.SENT, sent_at=now, updated_at=now, operation_id=created.operation.id
        ),
        [{"p_id": rc_id} for rc_id, _, _ in due],
    )
    return created.publications


async def _get(session: AsyncSession, rollout_id: int) -> Rollout:
    rollout = await session.get(Rollout, rollout_id)
    if rollout is None:
        raise RolloutNotFound(rollout_id)
    return rollout


async def _to_change(session: AsyncSession, rollout_id: int, actor: Actor) -> Rollout:
    """The rollout, if the actor may change it (all of its targets in the actor's area)."""
    rollout = await _get(session, rollout_id)
    await authorise(
        session,
        actor,
        Deed.ROLLOUT,
        areas=rollout.target_areas,
        clusters=rollout.target_clusters,
    )
    return rollout


async def pause(session: AsyncSession, rollout_id: int, *, actor: Actor, now: datetime) -> Rollout:
    rollout = await _to_change(session, rollout_id, actor)
    if rollout.state != RolloutState.RUNNING:
        raise Conflict(f"rollout {rollout_id} is {rollout.state}, not running")
    rollout.state, rollout.reason = RolloutState.PAUSED, f"paused by {actor.name}"
    return rollout


async def resume(session: AsyncSession, rollout_id: int, *, actor: Actor, now: datetime) -> Rollout:
    """A paused or aborted rollout goes on; failures before now no longer count towards
    the abort rule (a person has looked at them)."""
    rollout = await _to_change(session, rollout_id, actor)
    if rollout.state not in (RolloutState.PAUSED, RolloutState.ABORTED):
        raise Conflict(
            f"rollout {rollout_id} is {rollout.state}: only a paused or aborted one resumes"
        )
    rollout.state, rollout.reason, rollout.counted_from = (
        RolloutState.RUNNING,
        f"resumed by {actor.name}",
        now,
    )
    return rollout


async def cancel(session: AsyncSession, rollout_id: int, *, actor: Actor, now: datetime) -> Rollout:
    """No more installs; clusters not yet sent are `cancelled`. Installs under way are
    still followed to their outcome."""
    rollout = await _to_change(session, rollout_id, actor)
    if rollout.state in (RolloutState.CANCELLED, RolloutState.COMPLETED):
        raise Conflict(f"rollout {rollout_id} is already {rollout.state}")
    await session.execute(
        update(RolloutCluster)
        .where(
            RolloutCluster.rollout_id == rollout.id, RolloutCluster.state == InstallState.PENDING
        )
        .values(state=InstallState.CANCELLED, reason=f"cancelled by {actor.name}", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    rollout.state, rollout.reason, rollout.finished_at = (
        RolloutState.CANCELLED,
        f"cancelled by {actor.name}",
        now,
    )
    return rollout


async def read(session: AsyncSession, rollout_id: int, *, clusters_limit: int = 500) -> RolloutRead:
    rollout = await _get(session, rollout_id)
    rows = (
        await session.execute(
            select(RolloutCluster.wave, RolloutCluster.state, func.count())
            .where(RolloutCluster.rollout_id == rollout.id)
            .group_by(RolloutCluster.wave, RolloutCluster.state)
        )
    ).all()
    waves: dict[int, Counter[str]] = defaultdict(Counter)
    for wave, state, count in rows:
        waves[wave][state] += count
    totals: Counter[str] = sum(waves.values(), Counter())
    # Failures first: they are what a technician opens the page for.
    order: dict[str, int] = {
        InstallState.FAILED: 0,
        InstallState.INSTALLING: 1,
        InstallState.SENT: 2,
        InstallState.PENDING: 3,
    }
    clusters = (
        await session.execute(
            select(
                Cluster.code,
                RolloutCluster.wave,
                RolloutCluster.state,
                RolloutCluster.reason,
                RolloutCluster.updated_at,
            )
            .join(Cluster, Cluster.id == RolloutCluster.cluster_id)
            .where(RolloutCluster.rollout_id == rollout.id)
        )
    ).all()
    listed = sorted(clusters, key=lambda r: (order.get(r[2], 9), r[2], r[0]))[:clusters_limit]
    return RolloutRead(
        id=rollout.id,
        firmware=rollout.firmware_version,
        state=rollout.state,
        reason=rollout.reason,
        current_wave=rollout.current_wave,
        waves=[
            WaveRead(wave=w, total=sum(c.values()), counts=dict(c))
            for w, c in sorted(waves.items())
        ],
        per_minute=rollout.per_minute,
        abort_failure_pct=rollout.abort_failure_pct,
        abort_min_finished=rollout.abort_min_finished,
        pause_between_waves=rollout.pause_between_waves,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        finished_at=rollout.finished_at,
        total=sum(totals.values()),
        counts=dict(totals),
        clusters=[
            RolloutClusterRead(cluster=code, wave=wave, state=state, reason=reason, updated_at=at)
            for code, wave, state, reason, at in listed
        ],
    )
