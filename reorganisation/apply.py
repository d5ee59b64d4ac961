"""Applying a reorganisation, one step per transaction: the areas, the hamlets of
dissolved communes, then the clusters, the accounts, the schedules, and last the devices, each told its new areas. Each step works from a plan made afresh from the
register (plan.build), so a run that stopped half-way resumes where it stopped, and a
run after the last one finds nothing to do. Every step is in the audit log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.models import User
from areas.models import Area, AreaVersion
from audit.models import AuditOutcome
from audit.service import event
from broadcast.commands import Publication
from core.clock import Clock
from core.database import session_scope
from core.settings import Settings
from core.writes import Writing
from devices import moves
from devices.models import Cluster
from health import operations
from reorganisation.official import Official
from reorganisation.plan import Plan, build
from schedules.models import Schedule

log = logging.getLogger("reorganisation")

STEPS = ("areas", "hamlets", "clusters", "accounts", "schedules", "devices")


@dataclass
class _Run:
    clock: Clock
    actor: str
    settings: Settings
    publications: list[Publication] = field(default_factory=list)  # after the commit


@dataclass
class Applied:
    plan: Plan  # what the first look found to do
    steps: list[str] = field(default_factory=list)  # the steps that changed something


async def apply(
    sessions: async_sessionmaker[AsyncSession],
    writing: Writing,
    clock: Clock,
    settings: Settings,
    official: Official,
    effective: date,
    *,
    actor: str,
    stop_after: str | None = None,
    after_step: Callable[[str], Awaitable[None]] | None = None,
    publish: Callable[[list[Publication]], Awaitable[object]] | None = None,
) -> Applied:
    """Apply every step; `stop_after` ends the run after that step (as an interruption
    would); `after_step` runs after each committed step (the broker's access lists);
    `publish` sends the devices their new areas at once (without it, the running control
    plane's sweep sends them)."""
    async with session_scope(sessions) as session:
        applied = Applied(await build(session, official, effective))
    for step in STEPS:
        run = _Run(clock, actor, settings)
        async with writing() as session:
            plan = await build(session, official, effective)
            changed = await _STEPS[step](session, plan, run)
            if changed:
                session.add(
                    event(
                        at=clock.now(),
                        actor=actor,
                        action=f"reorganise {step}",
                        outcome=AuditOutcome.OK,
                        target=f"{plan.province.code} {effective.isoformat()}",
                        detail={"changed": changed},
                    )
                )
        if run.publications and publish is not None:
            await publish(run.publications)
        if changed:
            applied.steps.append(step)
            log.info("reorganisation %s: %s, %d changed", effective, step, changed)
        if after_step is not None:
            await after_step(step)
        if step == stop_after:
            break
    return applied


async def _areas(session: AsyncSession, plan: Plan, run: _Run) -> int:
    now, effective = run.clock.now(), plan.effective
    root_path = f"/{plan.province.code}/"
    current = {
        a.code: a
        for a in (await session.scalars(select(Area).where(Area.dissolved_on.is_(None)))).all()
    }
    root = current.get(plan.province.code)
    for change in plan.areas:  # the province comes first in the plan
        area = current.get(change.code)
        is_root = change.path == root_path
        parent_id = None if is_root else (root.id if root is not None else None)
        if area is None:
            area = Area(
                code=change.code,
                name=change.name,
                level="province" if is_root else "commune",
                parent_id=parent_id,
                path=change.path,
                depth=0 if is_root else 1,
                created_at=now,
                since=effective,
            )
            session.add(area)
            await session.flush()
            current[change.code] = area
        else:
            session.add(_version(area, effective, run))
            area.name, area.since = change.name, effective
            area.level = "province" if is_root else "commune"
            area.parent_id, area.depth = parent_id, 0 if is_root else 1
            await _repath(session, area, change.path, effective, run)
        if is_root:
            root = area
    for gone in plan.dissolved:
        area = current[gone.code]
        area.dissolved_on, area.successors = effective, list(gone.successors)
    await session.flush()
    return len(plan.areas) + len(plan.dissolved)


def _version(area: Area, effective: date, run: _Run) -> AreaVersion:
    """What the area was until the day before: reports place what happened then by it."""
    return AreaVersion(
        area_id=area.id,
        code=area.code,
        name=area.name,
        level=area.level,
        path=area.path,
        until=effective - timedelta(days=1),
        ended_at=datetime.combine(
            effective, time(0), tzinfo=ZoneInfo(run.settings.default_timezone)
        ),
        recorded_at=run.clock.now(),
    )


async def _repath(session: AsyncSession, area: Area, path: str, effective: date, run: _Run) -> None:
    """A unit takes a new path, its own units (a commune's hamlets, a hamlet's own) with
    it, their former places kept as versions; the clusters under them listen on the old
    topics until they confirm the new ones, told in the devices step."""
    old_path = area.path
    await moves.mark_moving(session, under=[old_path])
    moves.tell_later(session)
    below = (
        await session.scalars(
            select(Area).where(Area.path.startswith(old_path, autoescape=True), Area.id != area.id)
        )
    ).all()
    area.path = path
    for child in below:
        session.add(_version(child, effective, run))
        child.path = path + child.path.removeprefix(old_path)
        child.depth = child.path.count("/") - 2


async def _hamlets(session: AsyncSession, plan: Plan, run: _Run) -> int:
    """Each hamlet of a dissolved commune re-parented to the successor the plan chose,
    its own units and its clusters' topics with it (the clusters are told in the devices
    step, and named on their own topic until they confirm); one left for a person stays."""
    current = {
        a.code: a
        for a in (await session.scalars(select(Area).where(Area.dissolved_on.is_(None)))).all()
    }
    moved = 0
    for move in plan.hamlets:
        if move.new_parent is None:
            continue
        hamlet, parent = current[move.code], current[move.new_parent]
        session.add(_version(hamlet, plan.effective, run))
        hamlet.parent_id, hamlet.since = parent.id, plan.effective
        hamlet.depth = parent.depth + 1
        await _repath(session, hamlet, f"{parent.path}{hamlet.code}/", plan.effective, run)
        moved += 1
    await session.flush()
    return moved


async def _clusters(session: AsyncSession, plan: Plan, run: _Run) -> int:
    """Each cluster of a dissolved commune given its successor; it listens on the old
    topics until it confirms the new ones, told in the devices step."""
    ids = dict(
        (await session.execute(select(Area.code, Area.id).where(Area.dissolved_on.is_(None)))).all()
    )
    clusters = {
        c.code: c
        for c in await session.scalars(
            select(Cluster).where(Cluster.code.in_([m.cluster for m in plan.clusters]))
        )
    }
    await moves.move_clusters(
        session, [(clusters[m.cluster], ids[m.new_area]) for m in plan.clusters]
    )
    moves.tell_later(session)
    return len(plan.clusters)


async def _accounts(session: AsyncSession, plan: Plan, run: _Run) -> int:
    changed = 0
    for rescope in plan.accounts:
        if rescope.new_area is None:
            continue  # several successors: a person chooses (listed in the plan)
        await session.execute(
            update(User).where(User.username == rescope.username).values(area_code=rescope.new_area)
        )
        session.add(
            event(
                at=run.clock.now(),
                actor=run.actor,
                action="reorganise account",
                outcome=AuditOutcome.OK,
                target=rescope.username,
                detail={"from": rescope.old_area, "to": rescope.new_area},
            )
        )
        changed += 1
    return changed


async def _schedules(session: AsyncSession, plan: Plan, run: _Run) -> int:
    now = run.clock.now()
    for move in plan.schedules:
        schedule = await session.get(Schedule, move.schedule_id)
        assert schedule is not None  # read a moment ago, under the same lock
        schedule.target_areas = list(move.new_areas)
        schedule.version += 1  # the clusters' stored schedules are pushed again
        schedule.updated_at = now
    return len(plan.schedules)


async def _devices(session: AsyncSession, plan: Plan, run: _Run) -> int:
    """Every cluster still listening on its old topics is told its new areas (and media
    key); until it answers, broadcasts and operations name it on its own topic too
    (broadcast.service.addressed)."""
    publications = await operations.tell_new_areas(
        session=session, settings=run.settings, actor=run.actor, now=run.clock.now()
    )
    run.publications += publications
    return len(publications)


_STEPS: dict[str, Callable[[AsyncSession, Plan, _Run], Awaitable[int]]] = {
    "areas": _areas,
    "hamlets": _hamlets,
    "clusters": _clusters,
    "accounts": _accounts,
    "schedules": _schedules,
    "devices": _devices,
}
