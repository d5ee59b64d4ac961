"""What a reorganisation will change, worked out from the register and the official
conversion before anything changes (the dry run), and again before each step of
applying it (so an interrupted run resumes where it stopped).

- The new province and its communes and wards are created under it; an old unit whose
  official code continues (old Phường Tân Phú, 25195, is Phường Bình Phước, 25195) keeps
  its row, renamed and moved, with what it was before kept as a version.
- Every other old unit is **dissolved, not deleted**: it keeps its row, its records and
  its place in the old tree, with the day it ended and the codes of its successors.
- Clusters follow their commune. Where a commune was split, a cluster goes to the
  successor whose seat (the mean position of the clusters already known to be there) is
  nearest its registered position; where that cannot be decided (no position, no seat),
  to the first successor. Every cluster placed so is listed for a person to confirm.
- Accounts scoped to a dissolved unit move to its successor when there is exactly one;
  otherwise they are listed for a person to choose (never widened silently).
- Schedules aimed at a dissolved unit aim at its successors; two schedules that now
  start at the same time of day in the same commune are listed, both kept.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import User
from areas.models import Area
from core.errors import InvalidInput
from devices.models import Cluster
from reorganisation.official import Official, Unit
from schedules.models import Schedule
from schedules.states import ScheduleStatus

DECIDED = "its commune's only successor"
NEAREST = "nearest successor's seat: please confirm"
UNDECIDED = "no position or seat to decide by: the first successor, please confirm"
LIVE_SCHEDULES = (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED)


class ReorganisationRefused(InvalidInput):
    """The conversion cannot be applied as it stands; nothing was changed."""

    def __init__(self, message: str, item: str) -> None:
        super().__init__(message, detail={"field": "code", "item": item})


@dataclass(frozen=True)
class AreaChange:
    code: str
    name: str
    path: str
    was: str | None  # "name at path" before, for a unit that continues; None: created


@dataclass(frozen=True)
class Dissolution:
    code: str
    name: str
    level: str
    successors: tuple[str, ...]


@dataclass(frozen=True)
class ClusterMove:
    cluster: str
    old_area: str
    new_area: str
    how: str


@dataclass(frozen=True)
class Rescope:
    username: str
    old_area: str
    new_area: str | None  # None: several successors, a person chooses


@dataclass(frozen=True)
class ScheduleMove:
    schedule_id: str
    title: str
    old_areas: tuple[str, ...]
    new_areas: tuple[str, ...]


@dataclass(frozen=True)
class Overlap:
    area: str
    at: str  # the time of day both start
    schedules: tuple[str, ...]  # titles


@dataclass
class Plan:
    effective: date
    province: Unit
    areas: list[AreaChange] = field(default_factory=list)
    dissolved: list[Dissolution] = field(default_factory=list)
    clusters: list[ClusterMove] = field(default_factory=list)
    accounts: list[Rescope] = field(default_factory=list)
    schedules: list[ScheduleMove] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing left that applying would do (accounts waiting for a person's choice
        are still listed, and stay so until someone chooses)."""
        rescopes = any(r.new_area for r in self.accounts)
        return not (self.areas or self.dissolved or self.clusters or rescopes or self.schedules)

    @property
    def to_confirm(self) -> list[ClusterMove]:
        return [m for m in self.clusters if m.how != DECIDED]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(what, item, from, to): the plan as one table, for people and for CSV."""
        rows = [("area", a.code, a.was or "(new)", f"{a.name} at {a.path}") for a in self.areas]
        rows += [
            ("dissolved", d.code, f"{d.level} {d.name}", " ".join(d.successors))
            for d in self.dissolved
        ]
        rows += [
            ("cluster", m.cluster, m.old_area, f"{m.new_area} ({m.how})") for m in self.clusters
        ]
        rows += [
            ("account", r.username, r.old_area, r.new_area or "several successors: choose one")
            for r in self.accounts
        ]
        rows += [
            ("schedule", s.title, " ".join(s.old_areas), " ".join(s.new_areas))
            for s in self.schedules
        ]
        rows += [("overlap", o.area, o.at, " | ".join(o.schedules)) for o in self.overlaps]
        return rows

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("what", "item", "from", "to"))
        writer.writerows(self.rows())
        return out.getvalue()

    def summary(self) -> dict[str, int]:
        return {
            "areas_created_or_continued": len(self.areas),
            "areas_dissolved": len(self.dissolved),
            "clusters_moved": len(self.clusters),
            "clusters_to_confirm": len(self.to_confirm),
            "accounts_rescoped": sum(1 for r in self.accounts if r.new_area),
            "accounts_to_choose": sum(1 for r in self.accounts if not r.new_area),
            "schedules_moved": len(self.schedules),
            "overlaps": len(self.overlaps),
        }


def _before(area: Area, effective: date) -> bool:
    """Still in its form from before this reorganisation (not made or remade by it)."""
    return area.dissolved_on is None and (area.since is None or area.since < effective)


async def build(session: AsyncSession, official: Official, effective: date) -> Plan:
    areas = (await session.scalars(select(Area).order_by(Area.path))).all()
    by_code = {a.code: a for a in areas if a.dissolved_on is None}
    roots = [a for a in areas if a.parent_id is None and _before(a, effective)]
    done_roots = [a for a in areas if a.parent_id is None and a.since == effective]
    if not roots and not done_roots:
        raise ReorganisationRefused("no province to reorganise", "")
    root = (roots or done_roots)[0]
    province = official.province_after(root.code) if roots else Unit(root.code, root.name)
    if province is None:
        raise ReorganisationRefused(
            f"province {root.code} ({root.name}) is not in the official conversion", root.code
        )
    plan = Plan(effective, province)
    successors: dict[str, tuple[str, ...]] = {
        a.code: tuple(a.successors or ()) for a in areas if a.dissolved_on == effective
    }
    if roots:
        _areas(plan, official, root, [a for a in areas if _below(a, root)], by_code)
        successors |= {d.code: d.successors for d in plan.dissolved}
    await _clusters(session, plan, successors)
    await _accounts(session, plan, successors)
    await _schedules(session, plan, successors)
    return plan


def _below(area: Area, root: Area) -> bool:
    return area.path.startswith(root.path) and area.id != root.id and area.dissolved_on is None


def _areas(
    plan: Plan, official: Official, root: Area, below: list[Area], by_code: dict[str, Area]
) -> None:
    """The new tree: the province and every successor commune under it; the rest of the
    old tree dissolved with its successors."""
    province = plan.province
    new_root_path = f"/{province.code}/"
    communes = [a for a in below if a.level == "commune"]
    after: dict[str, list[Unit]] = {}
    for commune in communes:
        units = [u for u in official.communes_after(commune.code) if u.province == province.code]
        if not units:
            raise ReorganisationRefused(
                f"commune {commune.code} ({commune.name}) has no successor in province "
                f"{province.code} in the official conversion",
                commune.code,
            )
        after[commune.code] = units
    wards = {u.code: u for units in after.values() for u in units}

    if root.code != province.code:
        plan.areas.append(
            AreaChange(province.code, province.name, new_root_path, None)
            if province.code not in by_code
            else _continuing(by_code[province.code], province, new_root_path)
        )
        plan.dissolved.append(Dissolution(root.code, root.name, root.level, (province.code,)))
    elif root.name != province.name:
        plan.areas.append(_continuing(root, province, new_root_path))
    for code, unit in sorted(wards.items()):
        path = f"{new_root_path}{code}/"
        existing = by_code.get(code)
        if existing is None:
            plan.areas.append(AreaChange(code, unit.name, path, None))
        elif existing.path != path or existing.name != unit.name:
            plan.areas.append(_continuing(existing, unit, path))
    for area in below:
        if area.code in wards:
            continue
        if area.level == "commune":
            later = tuple(u.code for u in after[area.code])
        else:  # a district, or any level between: what its communes became
            later = tuple(
                sorted({u.code for c in communes if _below(c, area) for u in after[c.code]})
            )
        plan.dissolved.append(Dissolution(area.code, area.name, area.level, later))


def _continuing(area: Area, unit: Unit, path: str) -> AreaChange:
    return AreaChange(unit.code, unit.name, path, f"{area.name} at {area.path}")


async def _clusters(
    session: AsyncSession, plan: Plan, successors: dict[str, tuple[str, ...]]
) -> None:
    rows = (
        await session.execute(
            select(Cluster.code, Area.code, Cluster.latitude, Cluster.longitude)
            .join(Area, Cluster.area_id == Area.id)
            .order_by(Cluster.code)
        )
    ).all()
    moving = [r for r in rows if r[1] in successors]
    # Seats: where the clusters already known to be in a successor stand.
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _, area, lat, lon in rows:
        known = successors.get(area, (area,))
        if len(known) == 1 and lat is not None and lon is not None:
            points[known[0]].append((lat, lon))
    seats = {
        ward: (sum(p[0] for p in ps) / len(ps), sum(p[1] for p in ps) / len(ps))
        for ward, ps in points.items()
    }
    for code, area, lat, lon in moving:
        later = successors[area]
        if not later:
            raise ReorganisationRefused(
                f"cluster {code} is in {area}, which has no successor", code
            )
        if len(later) == 1:
            plan.clusters.append(ClusterMove(code, area, later[0], DECIDED))
            continue
        placed = [w for w in later if w in seats]
        if lat is None or lon is None or not placed:
            plan.clusters.append(ClusterMove(code, area, later[0], UNDECIDED))
            continue
        nearest = min(placed, key=lambda w: math.dist(seats[w], (lat, lon)))
        plan.clusters.append(ClusterMove(code, area, nearest, NEAREST))


async def _accounts(
    session: AsyncSession, plan: Plan, successors: dict[str, tuple[str, ...]]
) -> None:
    users = (
        await session.execute(
            select(User.username, User.area_code)
            .where(User.area_code.in_(list(successors)))
            .order_by(User.username)
        )
    ).all()
    for username, area in users:
        assert area is not None  # matched by the IN above
        later = successors[area]
        plan.accounts.append(Rescope(username, area, later[0] if len(later) == 1 else None))


async def _schedules(
    session: AsyncSession, plan: Plan, successors: dict[str, tuple[str, ...]]
) -> None:
    live = (
        await session.scalars(
            select(Schedule).where(Schedule.status.in_(LIVE_SCHEDULES)).order_by(Schedule.id)
        )
    ).all()
    aims: dict[str, set[str]] = {}
    for schedule in live:
        old = tuple(schedule.target_areas)
        new: list[str] = []
        for code in old:
            for later in successors.get(code, (code,)):
                if later not in new:
                    new.append(later)
        if tuple(new) != old:
            plan.schedules.append(ScheduleMove(schedule.id, schedule.title, old, tuple(new)))
        aims[schedule.id] = set(new)
    starts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for schedule in live:
        at = schedule.starts_local.strftime("%H:%M")
        for area in aims[schedule.id]:
            starts[(area, at)].append(schedule.title)
    moved = {s.schedule_id for s in plan.schedules}
    titles = {s.title for s in live if s.id in moved}
    for (area, at), names in sorted(starts.items()):
        if len(names) > 1 and titles.intersection(names):
            plan.overlaps.append(Overlap(area, at, tuple(sorted(names))))
