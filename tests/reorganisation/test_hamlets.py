"""Hamlets (thôn, ấp) follow their commune through a reorganisation: under a continuing
commune they move with it, under a merged one to its successor, under a split one to the
successor whose seat is nearest their clusters (for a person to confirm), and one with
nothing to place it by is listed for a person and left where it is. Their own units and
their clusters' topics move with them; never dissolved.

Old Bình Phước has no split commune in the official conversion, so the test's conversion
is the official one with one commune split by hand (the plan takes any `Official`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from areas.models import AreaVersion
from core.database import session_scope
from devices.models import Cluster
from health.models import Operation
from reorganisation.apply import apply
from reorganisation.official import Unit, VietnamProvinces
from reorganisation.plan import DECIDED, NEAREST, UNPLACED, build
from tests.factories import small_province
from tests.support import Stack
from wire.protocol import CommandKind

EFFECTIVE = date(2025, 7, 1)
# 25231 (Xã Đa Kia, in district 695) split between two wards by hand: one west, one east.
SPLIT = "25231"
WEST, EAST = "25217", "25195"  # seats near longitude 106.91 and 107.01 (small_province)


class SplitConversion(VietnamProvinces):
    def communes_after(self, code: str) -> list[Unit]:
        if code == SPLIT:
            return [
                Unit(EAST, "Phường Bình Phước", "75"),
                Unit(WEST, "Phường Phước Long", "75"),
            ]
        return super().communes_after(code)


HAMLETS = [
    # (code, name, parent): 25216 merges into 25217; 25195 continues; 25231 is split.
    ("2521601", "Thôn 1", "25216"),
    ("252160101", "Xóm 1", "2521601"),  # a hamlet's own unit: moves with it
    ("2519501", "Thôn Tân Phú", "25195"),
    ("2523101", "Ấp 1", SPLIT),  # its cluster stands by the western ward
    ("2523102", "Ấp 2", SPLIT),  # no clusters: a person chooses
]
HAMLET_CLUSTERS = [
    # (code, area, latitude, longitude)
    ("T1-01", "2521601", 11.51, 106.91),
    ("X1-01", "252160101", 11.52, 106.91),
    ("TP-01", "2519501", 11.51, 107.01),
    ("A1-01", "2523101", 11.5, 106.92),
]


async def with_hamlets(stack: Stack) -> None:
    await small_province(stack)
    for code, name, parent in HAMLETS:
        area = {"code": code, "name": name, "level": "hamlet", "parent_code": parent}
        assert (await stack.client.post("/api/v1/areas", json=area)).status_code == 201
    for code, area, lat, lon in HAMLET_CLUSTERS:
        cluster = {
            "code": code,
            "name": f"Cụm loa {code}",
            "area_code": area,
            "latitude": lat,
            "longitude": lon,
        }
        assert (await stack.client.post("/api/v1/clusters", json=cluster)).status_code == 201


async def run(stack: Stack, **options: Any) -> list[str]:
    applied = await apply(
        stack.runtime.sessions,
        stack.runtime.writing,
        stack.runtime.clock,
        stack.settings,
        SplitConversion(),
        EFFECTIVE,
        actor="test",
        **options,
    )
    return applied.steps


async def area(stack: Stack, code: str) -> dict[str, Any]:
    answer = await stack.client.get(f"/api/v1/areas/{code}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def test_hamlets_follow_their_commune(stack: Stack) -> None:
    await with_hamlets(stack)
    async with session_scope(stack.runtime.sessions) as session:
        plan = await build(session, SplitConversion(), EFFECTIVE)
    rows = {(r[0], r[1]): r[2:] for r in plan.rows()}
    assert rows[("hamlet", "2521601")] == ("25216", f"{WEST} ({DECIDED})")
    assert rows[("hamlet", "2523101")] == (SPLIT, f"{WEST} ({NEAREST})"), "by its cluster"
    assert rows[("hamlet", "2523102")] == (SPLIT, f"{UNPLACED} {EAST} {WEST}")
    assert ("hamlet", "2519501") not in rows, "its commune continues: it moves with it"
    assert ("hamlet", "252160101") not in rows, "moves with its hamlet"
    for code, _, _ in HAMLETS:
        assert ("dissolved", code) not in rows, "a hamlet is never dissolved"
    assert rows[("dissolved", SPLIT)] == ("commune Xã 25231", f"{EAST} {WEST}")
    summary = plan.summary()
    assert (summary["hamlets_moved"], summary["hamlets_to_confirm"]) == (2, 1)
    assert summary["hamlets_to_choose"] == 1

    # Interrupted after the areas: the hamlets, still under dissolved communes, are
    # worked out again from the register.
    assert await run(stack, stop_after="areas") == ["areas"]
    assert (await area(stack, "2521601"))["path"] == "/70/689/25216/2521601/"
    async with session_scope(stack.runtime.sessions) as session:
        resumed = await build(session, SplitConversion(), EFFECTIVE)
    assert [(h.code, h.new_parent, h.how) for h in resumed.hamlets] == [
        (h.code, h.new_parent, h.how) for h in plan.hamlets
    ]
    # Up to the devices: a send to the western ward names the hamlets' clusters too.
    assert await run(stack, stop_after="schedules") == ["hamlets", "clusters"]
    sent = await stack.client.post(
        "/api/v1/broadcasts", json={"title": "Lũ", "areas": [WEST], "text": "Thử"}
    )
    assert sent.status_code == 201, sent.text
    assert {"T1-01", "X1-01", "A1-01"} <= set(sent.json()["target_clusters"])

    # Today's places, and the old ones kept for the reports.
    assert (await area(stack, "2521601"))["path"] == f"/75/{WEST}/2521601/"
    assert (await area(stack, "2521601"))["parent_code"] == WEST
    assert (await area(stack, "252160101"))["path"] == f"/75/{WEST}/2521601/252160101/"
    assert (await area(stack, "2519501"))["path"] == f"/75/{EAST}/2519501/"
    assert (await area(stack, "2523101"))["path"] == f"/75/{WEST}/2523101/"
    left = await area(stack, "2523102")
    assert (left["path"], left["dissolved_on"]) == (f"/70/695/{SPLIT}/2523102/", None)
    for code, _, _ in HAMLETS:
        assert (await area(stack, code))["dissolved_on"] is None
    async with session_scope(stack.runtime.sessions) as session:
        versions = dict((await session.execute(select(AreaVersion.code, AreaVersion.path))).all())
        moving = dict(
            (
                await session.execute(
                    select(Cluster.code, Cluster.moving_from).where(
                        Cluster.moving_from.is_not(None)
                    )
                )
            ).all()
        )
    assert versions["252160101"] == "/70/689/25216/2521601/252160101/"
    assert versions["2519501"] == "/70/689/25195/2519501/"
    assert moving["X1-01"] == "/70/689/25216/2521601/252160101/", "its old topics"
    assert moving["A1-01"] == f"/70/695/{SPLIT}/2523101/"

    # The devices are told their new areas, as every moving cluster is.
    assert await run(stack) == ["devices"]
    async with session_scope(stack.runtime.sessions) as session:
        told = {
            op.target_clusters[0]: op.params["areas"]
            for op in await session.scalars(
                select(Operation).where(Operation.kind == CommandKind.SET_AREAS.value)
            )
        }
    assert told["X1-01"] == ["75", WEST, "2521601", "252160101"]
    assert told["TP-01"] == ["75", EAST, "2519501"]
    assert told["A1-01"] == ["75", WEST, "2523101"]

    # Again: nothing changes; the hamlet left for a person is still listed.
    assert await run(stack) == []
    async with session_scope(stack.runtime.sessions) as session:
        fresh = await build(session, SplitConversion(), EFFECTIVE)
    assert fresh.empty
    assert [(h.code, h.new_parent) for h in fresh.hamlets] == [("2523102", None)]


async def test_a_seat_counts_the_clusters_in_the_communes_hamlets(stack: Stack) -> None:
    """Thác Mơ (25216, merging into the western ward) has its clusters in a hamlet only:
    they still place the western ward's seat, so a cluster of the split commune standing
    by them goes west (without them the west had no seat and everything went east)."""
    await small_province(stack)
    hamlet = {"code": "2521601", "name": "Thôn 1", "level": "hamlet", "parent_code": "25216"}
    assert (await stack.client.post("/api/v1/areas", json=hamlet)).status_code == 201
    for code in ("25216-01", "25216-09"):
        moved = await stack.client.patch(f"/api/v1/clusters/{code}", json={"area_code": "2521601"})
        assert moved.status_code == 200, moved.text
    by_the_west = {
        "code": "25231-05",
        "name": "Cụm loa 5 xã 25231",
        "area_code": SPLIT,
        "latitude": 11.55,
        "longitude": 106.92,
    }
    assert (await stack.client.post("/api/v1/clusters", json=by_the_west)).status_code == 201
    async with session_scope(stack.runtime.sessions) as session:
        plan = await build(session, SplitConversion(), EFFECTIVE)
    placed = {move.cluster: (move.new_area, move.how) for move in plan.clusters}
    assert placed["25231-05"] == (WEST, NEAREST)
    assert placed["25231-01"] == (EAST, NEAREST), "by the eastern ward's own clusters"
