"""What a reorganisation will change, worked out from the register and the official
conversion before anything changes (the dry run), and again before each step of
applying it (so an interrupted run resumes where it stopped).

- The new province and its communes and wards are created under it; an old unit whose
  official code continues (old Phường Tân Phú, 25195, is Phường Bình Phước, 25195) keeps
  its row, renamed and moved, with what it was before kept as a version.
- Every other old unit is **dissolved, not deleted**: it keeps its row, its records and
  its place in the old tree, with the day it ended and the codes of its successors.
- Clusters follow their commune. Where a commune was split, a cluster goes to the
  successor whose seat (the mean position of the clusters already known to be there, in
  the commune or in its hamlets) is nearest its registered position; where that cannot
  be decided (no position, no seat), to the first successor. Every cluster placed so is
  listed for a person to confirm.
- A commune's own units (hamlets, thôn/ấp, and anything below them) are never dissolved:
  they follow their commune. Under a continuing commune they move with it; under a
  dissolved one they are re-parented to its successor, for a split commune the one
  whose seat is nearest the mean position of the hamlet's clusters (listed for a person
  to confirm). A hamlet with nothing to place it by (no clusters with a position, no
  seat) is listed for a person to choose and left where it is.
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
from collections.abc import Sequence
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
UNPLACED = "no clusters with a position to place it by: choose one of"
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
class HamletMove:
    """A commune's own unit (a hamlet) whose commune was dissolved, and where it goes."""

    code: str
    name: str
    old_parent: str
    new_parent: str | None  # None: nothing to place it by, a person chooses
    successors: tuple[str, ...]
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
    hamlets: list[HamletMove] = field(default_factory=list)
    clusters: list[ClusterMove] = field(default_factory=list)
    accounts: list[Rescope] = field(default_factory=list)
    schedules: list[ScheduleMove] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing left that applying would do (accounts waiting for a person's choice
        are still listed, and stay so until someone chooses)."""
        rescopes = any(r.new_area for r in self.accounts)
        hamlets = any(h.new_parent for h in self.hamlets)
        return not (
            self.areas or self.dissolved or hamlets or self.clusters or rescopes or self.schedules
        )

    @property
    def to_confirm(self) -> list[ClusterMove]:
        return [m for m in self.clusters if m.how != DECIDED]

    @property
    def hamlets_to_confirm(self) -> list[HamletMove]:
        return [h for h in self.hamlets if h.new_parent and h.how != DECIDED]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(what, item, from, to): the plan as one table, for people and for CSV."""
        rows = [("area", a.code, a.was or "(new)", f"{a.name} at {a.path}") for a in self.areas]
        rows += [
            ("dissolved", d.code, f"{d.level} {d.name}", " ".join(d.successors))
            for d in self.dissolved
        ]
        rows += [
            (
                "hamlet",
                h.code,
                h.old_parent,
                f"{h.new_parent} ({h.how})"
                if h.new_parent
                else f"{h.how} {' '.join(h.successors)}",
            )
            for h in self.hamlets
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
            "hamlets_moved": sum(1 for h in self.hamlets if h.new_parent),
            "hamlets_to_confirm": len(self.hamlets_to_confirm),
            "hamlets_to_choose": sum(1 for h in self.hamlets if not h.new_parent),
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
    positions = await _positions(session)
    seats = _seats(positions, successors, areas)
    _hamlets(plan, areas, successors, seats, positions)
    await _clusters(session, plan, successors, seats)
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
    # A commune's own units follow it (_hamlets), never dissolved with it.
    below = [a for a in below if not any(_below(a, c) for c in communes)]
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


type Point = tuple[float, float]


async def _positions(session: AsyncSession) -> list[tuple[int, str, Point]]:
    """(area id, area code, position) of every cluster with a registered position."""
    rows = (
        await session.execute(
            select(Area.id, Area.code, Cluster.latitude, Cluster.longitude)
            .join(Area, Cluster.area_id == Area.id)
            .where(Cluster.latitude.is_not(None), Cluster.longitude.is_not(None))
        )
    ).all()
    return [
        (area_id, code, (lat, lon))
        for area_id, code, lat, lon in rows
        if lat is not None and lon is not None  # as the query asks: for the type checker
    ]


def _seats(
    positions: list[tuple[int, str, Point]],
    successors: dict[str, tuple[str, ...]],
    areas: Sequence[Area],
) -> dict[str, Point]:
    """Each commune's seat: the mean position of the clusters already known to be there
    (in it or in its hamlets, or in a unit whose only successor it is, or that unit's
    hamlets)."""
    commune_of = _communes(areas)
    points: dict[str, list[Point]] = defaultdict(list)
    for area_id, area, point in positions:
        commune = commune_of.get(area_id, area)
        known = successors.get(commune, (commune,))
        if len(known) == 1:
            points[known[0]].append(point)
    return {ward: _mean(ps) for ward, ps in points.items()}


def _communes(areas: Sequence[Area]) -> dict[int, str]:
    """Each unit's commune (by id): itself, or for a hamlet (or a unit below one) the
    commune it belongs to; a unit above the communes stands for itself."""
    by_id = {a.id: a for a in areas}

    def commune(area: Area) -> str:
        at: Area | None = area
        while at is not None and at.level != "commune":
            at = by_id.get(at.parent_id) if at.parent_id is not None else None
        return at.code if at is not None else area.code

    return {a.id: commune(a) for a in areas}


def _mean(points: list[Point]) -> Point:
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def _nearest(later: tuple[str, ...], seats: dict[str, Point], point: Point) -> str | None:
    """The successor whose seat is nearest; None when none of them has a seat."""
    placed = [w for w in later if w in seats]
    return min(placed, key=lambda w: math.dist(seats[w], point)) if placed else None


def _hamlets(
    plan: Plan,
    areas: Sequence[Area],
    successors: dict[str, tuple[str, ...]],
    seats: dict[str, Point],
    positions: list[tuple[int, str, Point]],
) -> None:
    """Every unit directly under a dissolved commune (its hamlets: the plan's dissolved
    ones, or the register's after the areas step) goes to a successor, its own units
    with it. A split commune's hamlet goes where its clusters are placed: the successor
    whose seat is nearest their mean position."""
    by_id = {a.id: a for a in areas}
    kept = {a.code for a in plan.areas} | {d.code for d in plan.dissolved}
    points: dict[int, list[Point]] = defaultdict(list)  # area id -> its clusters' positions
    for area_id, _, point in positions:
        points[area_id].append(point)
    for area in areas:
        parent = by_id.get(area.parent_id) if area.parent_id is not None else None
        if area.dissolved_on is not None or area.code in kept or parent is None:
            continue
        later = successors.get(parent.code)
        if later is None or parent.level != "commune":
            continue
        if len(later) == 1:
            plan.hamlets.append(
                HamletMove(area.code, area.name, parent.code, later[0], later, DECIDED)
            )
            continue
        mine = [p for a in areas if a.path.startswith(area.path) for p in points.get(a.id, ())]
        nearest = _nearest(later, seats, _mean(mine)) if mine else None
        plan.hamlets.append(
            HamletMove(
                area.code,
                area.name,
                parent.code,
                nearest,
                later,
                NEAREST if nearest else UNPLACED,
            )
        )


async def _clusters(
    session: AsyncSession,
    plan: Plan,
    successors: dict[str, tuple[str, ...]],
    seats: dict[str, Point],
) -> None:
    rows = (
        await session.execute(
            select(Cluster.code, Area.code, Cluster.latitude, Cluster.longitude)
            .join(Area, Cluster.area_id == Area.id)
            .where(Area.code.in_(list(successors)))
            .order_by(Cluster.code)
        )
    ).all()
    for code, area, lat, lon in rows:
        later = successors[area]
        if not later:
            raise ReorganisationRefused(
                f"cluster {code} is in {area}, which has no successor", code
            )
        if len(later) == 1:
            plan.clusters.append(ClusterMove(code, area, later[0], DECIDED))
            continue
        nearest = (
            _nearest(later, seats, (lat, lon)) if lat is not None and lon is not None else None
        )
        if nearest is None:
            plan.clusters.append(ClusterMove(code, area, later[0], UNDECIDED))
            continue
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
