"""Applying a reorganisation, one step per transaction: the areas, then the clusters,
the accounts and the schedules. Each step works from a plan made afresh from the
register (plan.build), so a run that stopped half-way resumes where it stopped, and a
run after the last one finds nothing to do. Every step is in the audit log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.models import User
from areas.models import Area, AreaVersion
from audit.service import event
from core.clock import Clock
from core.database import session_scope
from devices.models import Cluster
from reorganisation.official import Official
from reorganisation.plan import Plan, build
from schedules.models import Schedule

log = logging.getLogger("reorganisation")

STEPS = ("areas", "clusters", "accounts", "schedules")


@dataclass
class Applied:
    plan: Plan  # what the first look found to do
    steps: list[str] = field(default_factory=list)  # the steps that changed something


async def apply(
    sessions: async_sessionmaker[AsyncSession],
    write_lock: asyncio.Lock,
    clock: Clock,
    official: Official,
    effective: date,
    *,
    actor: str,
    stop_after: str | None = None,
    after_step: Callable[[str], Awaitable[None]] | None = None,
) -> Applied:
    """Apply every step; `stop_after` ends the run after that step (as an interruption
    would); `after_step` runs after each committed step (the broker's access lists)."""
    async with session_scope(sessions) as session:
        applied = Applied(await build(session, official, effective))
    for step in STEPS:
        async with write_lock, session_scope(sessions) as session:
            plan = await build(session, official, effective)
            changed = await _STEPS[step](session, plan, clock, actor)
            if changed:
                session.add(
                    event(
                        at=clock.now(),
                        actor=actor,
                        action=f"reorganise {step}",
                        outcome="ok",
                        target=f"{plan.province.code} {effective.isoformat()}",
                        detail={"changed": changed},
                    )
                )
        if changed:
            applied.steps.append(step)
            log.info("reorganisation %s: %s, %d changed", effective, step, changed)
        if after_step is not None:
            await after_step(step)
        if step == stop_after:
            break
    return applied


async def _areas(session: AsyncSession, plan: Plan, clock: Clock, actor: str) -> int:
    now, effective = clock.now(), plan.effective
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
            session.add(
                AreaVersion(
                    area_id=area.id,
                    code=area.code,
                    name=area.name,
                    level=area.level,
                    path=area.path,
                    until=effective - timedelta(days=1),
                    recorded_at=now,
                )
            )
            old_path = area.path
            area.name, area.path, area.since = change.name, change.path, effective
            area.level = "province" if is_root else "commune"
            area.parent_id, area.depth = parent_id, 0 if is_root else 1
            await _move_below(session, area, old_path)
        if is_root:
            root = area
    for gone in plan.dissolved:
        area = current[gone.code]
        area.dissolved_on, area.successors = effective, list(gone.successors)
    await session.flush()
    return len(plan.areas) + len(plan.dissolved)


async def _move_below(session: AsyncSession, area: Area, old_path: str) -> None:
    """A continuing commune's own units (hamlets) move with it."""
    below = (
        await session.scalars(
            select(Area).where(Area.path.startswith(old_path, autoescape=True), Area.id != area.id)
        )
    ).all()
    for child in below:
        child.path = area.path + child.path.removeprefix(old_path)
        child.depth = child.path.count("/") - 2


async def _clusters(session: AsyncSession, plan: Plan, clock: Clock, actor: str) -> int:
    ids = dict(
        (await session.execute(select(Area.code, Area.id).where(Area.dissolved_on.is_(None)))).all()
    )
    for move in plan.clusters:
        await session.execute(
            update(Cluster).where(Cluster.code == move.cluster).values(area_id=ids[move.new_area])
        )
    return len(plan.clusters)


async def _accounts(session: AsyncSession, plan: Plan, clock: Clock, actor: str) -> int:
    changed = 0
    for rescope in plan.accounts:
        if rescope.new_area is None:
            continue  # several successors: a person chooses (listed in the plan)
        await session.execute(
            update(User).where(User.username == rescope.username).values(area_code=rescope.new_area)
        )
        session.add(
            event(
                at=clock.now(),
                actor=actor,
                action="reorganise account",
                outcome="ok",
                target=rescope.username,
                detail={"from": rescope.old_area, "to": rescope.new_area},
            )
        )
        changed += 1
    return changed


async def _schedules(session: AsyncSession, plan: Plan, clock: Clock, actor: str) -> int:
    now = clock.now()
    for move in plan.schedules:
        schedule = await session.get(Schedule, move.schedule_id)
        assert schedule is not None  # read a moment ago, under the same lock
        schedule.target_areas = list(move.new_areas)
        schedule.version += 1  # the clusters' stored schedules are pushed again
        schedule.updated_at = now
    return len(plan.schedules)


_STEPS: dict[str, Callable[[AsyncSession, Plan, Clock, str], Awaitable[int]]] = {
    "areas": _areas,
    "clusters": _clusters,
    "accounts": _accounts,
    "schedules": _schedules,
}
