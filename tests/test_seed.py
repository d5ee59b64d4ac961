"""`broadcast seed demo`: today's province by default (Đồng Nai, 75, communes and wards
straight under the province), old Bình Phước with an `as_of` before 1 July 2025; both
from the vietnam-provinces package's official codes, never typed by hand."""

from __future__ import annotations

import random
from datetime import date

from sqlalchemy import func, select
from vietnam_provinces import ProvinceCode, VietNamDivisionType, Ward

from areas.models import Area
from core.database import session_scope
from devices.models import Cluster
from devstack import seed
from tests.support import Stack


async def test_today_is_dong_nai_without_districts_and_both_old_fleets(stack: Stack) -> None:
    async with stack.runtime.writing() as session:
        report = await seed.seed_demo(session, stack.runtime.clock)
        again = await seed.seed_demo(session, stack.runtime.clock)
    assert report.created and not again.created
    official = {int(w.code): w for w in Ward.iter_by_province(ProvinceCode(75))}
    assert (report.communes, report.districts, len(official)) == (95, 0, 95)

    async with session_scope(stack.runtime.sessions) as session:
        areas = (await session.scalars(select(Area))).all()
        clusters = (await session.scalars(select(Cluster))).all()
    assert {a.level for a in areas} == {"province", "commune"}, "no district level any more"
    root = next(a for a in areas if a.level == "province")
    assert (root.code, root.path) == ("75", "/75/")
    wards = {int(a.code): a for a in areas if a.level == "commune"}
    assert set(wards) == set(official)
    assert all(a.parent_id == root.id and a.depth == 1 for a in wards.values())
    assert all(wards[c].name == official[c].name for c in official)

    speakers = [c for c in clusters if c.kind == "speaker_cluster"]
    boards = [c for c in clusters if c.kind == "eboard"]
    assert len(speakers) == seed.MERGED_CLUSTERS == 1639 + 2348
    assert sum(c.speakers for c in speakers) == report.speakers == round(3987 * 3807 / 1639)
    by_id = {a.id: int(a.code) for a in wards.values()}
    phuong = {c for c, w in official.items() if w.division_type is VietNamDivisionType.PHUONG}
    assert sorted(by_id[b.area_id] for b in boards) == sorted(phuong)
    assert all(c.code.startswith(f"{by_id[c.area_id]}-") for c in speakers), "named by ward"
    # Old Thác Mơ (25216) is part of Phường Phước Long (25217) today: clusters are there.
    assert [s.ward.code for s in Ward.search_from_legacy(code=25216)] == [25217]
    assert any(by_id[c.area_id] == 25217 for c in speakers)


async def test_before_the_reform_is_old_binh_phuoc_with_its_districts(stack: Stack) -> None:
    async with stack.runtime.writing() as session:
        report = await seed.seed_demo(session, stack.runtime.clock, as_of=date(2025, 6, 30))
        levels = dict(
            (await session.execute(select(Area.level, func.count()).group_by(Area.level))).all()
        )
        speakers = await session.scalar(
            select(func.sum(Cluster.speakers)).where(Cluster.kind == "speaker_cluster")
        )
    assert (report.province, report.districts, report.communes) == ("Tỉnh Bình Phước", 11, 111)
    assert levels == {"province": 1, "district": 11, "commune": 111}
    assert (report.clusters, speakers) == (1639, 3807)


def test_a_cluster_of_a_split_commune_goes_to_the_nearest_successor() -> None:
    rng = random.Random(1)
    old = [c for p in seed.LEGACY_SOURCES for c in seed._old_communes(p, rng)]
    seats = seed._ward_seats(iter(old))
    split = [c for c in old if len(Ward.search_from_legacy(code=c.code)) > 1]
    assert len(split) == 1, "old Đồng Nai has one commune split between two wards"
    successors = [int(s.ward.code) for s in Ward.search_from_legacy(code=split[0].code)]
    for ward in successors:
        # A cluster standing at a successor's seat belongs to that successor.
        assert seed._successor(split[0].code, seats[ward], seats) == ward
    assert len({seats[w] for w in successors}) == len(successors), "seats tell them apart"
