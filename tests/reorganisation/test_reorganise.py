"""The reform of 1 July 2025 applied to a running register (issue 22), from the official
conversion: old Bình Phước (70) with its districts becomes part of Đồng Nai (75), its
communes merged into wards. A dry run first (nothing changes), then the steps, one
interrupted and resumed, then again (nothing left to do). Every old record still reads
the same; clusters, accounts and schedules follow their communes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from areas.models import Area, AreaVersion
from audit.models import AuditEvent
from core.clock import ManualClock
from core.database import session_scope
from devices.models import Cluster
from health.models import Operation
from reorganisation.apply import apply
from reorganisation.official import VietnamProvinces
from reorganisation.plan import DECIDED, build
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, eventually
from web.deps import SESSION_COOKIE

EFFECTIVE = date(2025, 7, 1)
# The official conversion, as vietnam-provinces 2026.9.0 has it:
#   25216 Thác Mơ -> 25217 Phường Phước Long; 25195 Tân Phú and 25198 Tân Đồng -> 25195
#   Phường Bình Phước (the code continues); 25231 -> 25231; province 70 -> 75.


async def old_province(stack: Stack, tone_mp3: Path) -> dict[str, Any]:
    """The small province, plus Tân Đồng (25198, merging into 25195 with Tân Phú), a
    commune operator, a district operator, a morning slot in 25195 and in 25198, and an
    emergency sent to Thác Mơ before the reform."""
    await small_province(stack)
    area = {"code": "25198", "name": "Phường Tân Đồng", "level": "commune", "parent_code": "689"}
    assert (await stack.client.post("/api/v1/areas", json=area)).status_code == 201
    cluster = {"code": "25198-01", "name": "Cụm loa Tân Đồng 1", "area_code": "25198"}
    assert (await stack.client.post("/api/v1/clusters", json=cluster)).status_code == 201
    await make_user(stack, "xa.thacmo", role="commune_operator", area="25216")
    await make_user(stack, "huyen.dongxoai", role="district_operator", area="689")
    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Bản tin sáng", media_sha256=clip["sha256"])
    schedules = []
    for commune in ("25195", "25198"):
        response = await stack.client.post(
            "/api/v1/schedules",
            json={
                "title": f"Bản tin sáng {commune}",
                "bulletin_id": bulletin["id"],
                "starts_local": "2026-12-10T06:00:00",
                "rule": "FREQ=DAILY",
                "areas": [commune],
            },
        )
        assert response.status_code == 201, response.text
        schedules.append(response.json())
    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ", "areas": ["25216"], "media_sha256": clip["sha256"]},
    )
    assert sent.status_code == 201, sent.text
    return {"schedules": schedules, "broadcast": sent.json()}


async def counts(stack: Stack) -> dict[str, int]:
    async with session_scope(stack.runtime.sessions) as session:
        areas = await session.scalar(select(func.count()).select_from(Area))
        versions = await session.scalar(select(func.count()).select_from(AreaVersion))
    return {"areas": areas or 0, "versions": versions or 0}


async def test_the_reform_applied_to_a_running_register(stack: Stack, tone_mp3: Path) -> None:
    before = await old_province(stack, tone_mp3)
    official = VietnamProvinces()

    # The dry run: the plan, and nothing changed.
    unchanged = await counts(stack)
    dry = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": True}
    )
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["province"] == "75 Thành phố Đồng Nai"
    rows = {(r[0], r[1]): r for r in plan["rows"]}
    assert rows[("dissolved", "70")][3] == "75"
    assert rows[("dissolved", "689")][3] == "25195 25217"
    assert rows[("dissolved", "25216")][3] == "25217"
    assert rows[("dissolved", "25198")][3] == "25195"
    assert ("dissolved", "25195") not in rows, "its code continues: renamed, not dissolved"
    assert rows[("area", "25195")][3] == "Phường Bình Phước at /75/25195/"
    assert rows[("area", "25217")][2] == "(new)"
    assert rows[("cluster", "25216-01")][3] == f"25217 ({DECIDED})"
    assert rows[("account", "xa.thacmo")][3] == "25217"
    assert rows[("account", "huyen.dongxoai")][3] == "several successors: choose one"
    assert rows[("overlap", "25195")][2] == "06:00", "two morning slots now in one ward"
    assert plan["summary"]["clusters_to_confirm"] == 0
    assert await counts(stack) == unchanged
    as_csv = await stack.client.post(
        "/api/v1/areas/reorganise?format=csv", json={"effective": "2025-07-01"}
    )
    assert as_csv.text.splitlines()[0] == "what,item,from,to" and "25216-01" in as_csv.text

    # Interrupted after the areas, then resumed: the same end as one run.
    await apply(
        stack.runtime.sessions,
        stack.runtime.writing,
        stack.runtime.clock,
        stack.settings,
        official,
        EFFECTIVE,
        actor="test",
        stop_after="areas",
    )
    moved = await stack.client.get("/api/v1/clusters/25216-01")
    assert moved.json()["area_code"] == "25216", "the clusters' step has not run yet"
    resumed = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": False}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["steps_applied"] == ["clusters", "accounts", "schedules", "devices"]

    # Today's tree: the province and its wards, no districts; the old units kept.
    current = (await stack.client.get("/api/v1/areas?limit=100")).json()["items"]
    assert {a["code"]: a["path"] for a in current} == {
        "75": "/75/",
        "25195": "/75/25195/",
        "25217": "/75/25217/",
        "25231": "/75/25231/",
    }
    old = (await stack.client.get("/api/v1/areas/25216")).json()
    assert (old["dissolved_on"], old["successors"], old["path"]) == (
        "2025-07-01",
        ["25217"],
        "/70/689/25216/",
    )
    history = (await stack.client.get("/api/v1/areas?dissolved=true&limit=100")).json()
    assert {"70", "689", "695", "25216", "25198"} <= {a["code"] for a in history["items"]}
    async with session_scope(stack.runtime.sessions) as session:
        was = await session.scalar(select(AreaVersion).where(AreaVersion.code == "25195"))
        assert was is not None
        assert (was.name, was.path, was.until) == (
            "Xã 25195",
            "/70/689/25195/",
            EFFECTIVE - timedelta(days=1),
        )

    # Clusters, accounts and schedules followed.
    assert (await stack.client.get("/api/v1/clusters/25216-01")).json()["area_code"] == "25217"
    assert (await stack.client.get("/api/v1/clusters/25198-01")).json()["area_code"] == "25195"
    users = {u["username"]: u for u in (await stack.client.get("/api/v1/users")).json()}
    assert users["xa.thacmo"]["area_code"] == "25217"
    assert users["huyen.dongxoai"]["area_code"] == "689", "never widened silently"
    for schedule, moved_here in zip(before["schedules"], (False, True), strict=True):
        now = (await stack.client.get(f"/api/v1/schedules/{schedule['id']}")).json()
        assert now["target_areas"] == ["25195"], "both mornings kept, in the merged ward"
        # Tân Đồng's moved (a new version, pushed to the clusters again); Tân Phú's code
        # continues, so its schedule stands as it was.
        assert now["version"] == schedule["version"] + moved_here
    async with session_scope(stack.runtime.sessions) as session:
        steps = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.startswith("reorganise"))
            )
        ).all()
    assert {"reorganise areas", "reorganise clusters", "reorganise account"} <= set(steps)

    # The old record reads the same; a send to an old commune names its successor; a
    # send to the new ward reaches the clusters that came from the old communes.
    record = (await stack.client.get(f"/api/v1/broadcasts/{before['broadcast']['id']}")).json()
    assert record["target_areas"] == ["25216"] and record["total"] == before["broadcast"]["total"]
    refused = await stack.client.post(
        "/api/v1/broadcasts", json={"title": "x", "areas": ["25216"], "text": "Thử"}
    )
    assert refused.status_code == 422 and "send to 25217 instead" in refused.text
    merged = await stack.client.post(
        "/api/v1/broadcasts",
        json={
            "title": "Lũ",
            "areas": ["25195"],
            "media_sha256": before["broadcast"]["media_sha256"],
        },
    )
    assert merged.status_code == 201, merged.text
    assert merged.json()["total"] == 3, "25195-01, 25195-09 and Tân Đồng's 25198-01"

    # Again: nothing left to do, nothing changes.
    settled = await counts(stack)
    again = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": False}
    )
    assert again.json()["steps_applied"] == []
    left = {k: v for k, v in again.json()["summary"].items() if v and k != "overlaps"}
    assert left == {"accounts_to_choose": 1}, "only the district operator, for a person"
    assert await counts(stack) == settled
    async with session_scope(stack.runtime.sessions) as session:
        fresh = await build(session, official, EFFECTIVE)
    assert fresh.empty


async def test_a_commune_the_conversion_does_not_know_is_refused_naming_it(
    stack: Stack,
) -> None:
    await small_province(stack)
    fake = {"code": "99999", "name": "Xã Không Có", "level": "commune", "parent_code": "689"}
    assert (await stack.client.post("/api/v1/areas", json=fake)).status_code == 201
    unchanged = await counts(stack)
    for dry_run in (True, False):
        response = await stack.client.post(
            "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": dry_run}
        )
        assert response.status_code == 422, response.text
        assert "commune 99999 (Xã Không Có) has no successor" in response.text
    assert await counts(stack) == unchanged, "nothing half-applied"


async def test_no_silent_moment_for_the_clusters_while_they_move(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    """Mid-change (the register moved, the devices not yet told) an emergency to a new
    ward reaches its clusters on their own topic, once, and no cluster outside; told
    their new areas, they subscribe to them before leaving the old, and the next
    emergency reaches them on the ward's topic."""
    province = await small_province(stack)
    fleet = fleet_factory(province.online(), time_compression=10)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    await apply(
        stack.runtime.sessions,
        stack.runtime.writing,
        stack.runtime.clock,
        stack.settings,
        VietnamProvinces(),
        EFFECTIVE,
        actor="test",
        stop_after="schedules",  # everything but telling the devices
    )
    mover, outsider = fleet.devices["25216-01"], fleet.devices["25195-01"]
    assert mover.spec.areas == ("70", "689", "25216"), "still on the old topics"

    first = await send_emergency(stack, clip["sha256"])
    assert first["target_areas"] == ["25217"]
    assert first["target_clusters"] == ["25216-01", "25216-09"], "named while they move"
    await stack.wait_broadcast(first["id"], lambda b: b["counts"].get("played", 0) == 1)
    assert mover.play_counts[first["id"]] == 1
    assert first["id"] not in outsider.play_counts

    told = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": False}
    )
    assert told.json()["steps_applied"] == ["devices"]
    await eventually(lambda: moving(stack), lambda codes: "25216-01" not in codes, what="confirmed")
    assert mover.spec.areas == ("75", "25217")
    assert outsider.spec.areas == ("75", "25195"), "a continuing ward's clusters too"
    assert await moving(stack) == {"25216-09", "25195-09", "25231-09"}, "the offline ones wait"

    second = await send_emergency(stack, clip["sha256"])
    assert second["target_clusters"] == ["25216-09"], "only the one still moving"
    await stack.wait_broadcast(second["id"], lambda b: b["counts"].get("played", 0) == 1)
    assert mover.play_counts[second["id"]] == 1, "on the ward's topic now"
    assert mover.play_counts[first["id"]] == 1


async def send_emergency(stack: Stack, sha: str) -> dict[str, Any]:
    response = await stack.client.post(
        "/api/v1/broadcasts", json={"title": "Lũ", "areas": ["25217"], "media_sha256": sha}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def moving(stack: Stack) -> set[str]:
    async with session_scope(stack.runtime.sessions) as session:
        codes = await session.scalars(select(Cluster.code).where(Cluster.moving_from.is_not(None)))
        return set(codes)


async def test_junes_report_shows_the_areas_as_they_were_in_june(
    stack_factory: Callable[..., Awaitable[Stack]], tone_mp3: Path
) -> None:
    """A broadcast heard in Tân Phú (25195) in June 2025 stays in June's report on old
    Bình Phước under its old district after the reform moved 25195 under Đồng Nai, and is
    not in Đồng Nai's June report, whose units did not exist yet."""
    clock = ManualClock(datetime(2025, 6, 20, 3, 0, tzinfo=UTC))
    stack = await stack_factory(clock=clock)
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ", "areas": ["25195"], "media_sha256": clip["sha256"]},
    )
    assert sent.status_code == 201, sent.text
    clock.set(datetime(2025, 7, 2, 3, 0, tzinfo=UTC))  # the reform is in force
    applied = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": False}
    )
    assert applied.status_code == 200, applied.text
    june = {"since": "2025-06-01T00:00:00Z", "until": "2025-07-01T00:00:00Z"}

    old = await stack.client.get("/api/v1/reports/airtime", params={"area": "70", **june})
    assert old.status_code == 200, old.text
    rows = {r["area_code"]: r["broadcasts"] for r in old.json()}
    assert rows["70"] == 1 and rows["689"] == 1, "heard under its old district"
    new = await stack.client.get("/api/v1/reports/airtime", params={"area": "75", **june})
    assert {r["area_code"]: r["broadcasts"] for r in new.json()}["75"] == 0


async def test_june_rolled_up_into_todays_wards_beside_july(
    stack_factory: Callable[..., Awaitable[Stack]], tone_mp3: Path
) -> None:
    """For comparison, `units=today` counts June 2025 in today's units: what Tân Đồng
    (25198, merged into 25195) heard and the bulletin written for it count under Phường
    Bình Phước (25195), Thác Mơ's (25216) under Phường Phước Long (25217). The record
    (`units=then`, the default) keeps June under old Bình Phước, in the monthly report
    and the central statistics alike."""
    clock = ManualClock(datetime(2025, 6, 20, 3, 0, tzinfo=UTC))
    stack = await stack_factory(clock=clock)
    await small_province(stack)
    area = {"code": "25198", "name": "Phường Tân Đồng", "level": "commune", "parent_code": "689"}
    assert (await stack.client.post("/api/v1/areas", json=area)).status_code == 201
    cluster = {"code": "25198-01", "name": "Cụm loa Tân Đồng 1", "area_code": "25198"}
    assert (await stack.client.post("/api/v1/clusters", json=cluster)).status_code == 201
    clip = await upload(stack, tone_mp3)
    for commune in ("25198", "25216"):
        sent = await stack.client.post(
            "/api/v1/broadcasts",
            json={"title": "Lũ", "areas": [commune], "media_sha256": clip["sha256"]},
        )
        assert sent.status_code == 201, sent.text
    await approved_bulletin(stack, title="Tin Tân Đồng", area="25198", topic="flood", text="Lũ")
    clock.set(datetime(2025, 7, 2, 3, 0, tzinfo=UTC))
    applied = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": False}
    )
    assert applied.status_code == 200, applied.text
    june = {"since": "2025-06-01T00:00:00Z", "until": "2025-07-01T00:00:00Z"}

    async def airtime(area: str, **more: str) -> dict[str, int]:
        got = await stack.client.get(
            "/api/v1/reports/airtime", params={"area": area, **june, **more}
        )
        assert got.status_code == 200, got.text
        return {r["area_code"]: r["broadcasts"] for r in got.json()}

    today = await airtime("75", units="today")
    assert today["75"] == 2 and today["25195"] == 1 and today["25217"] == 1, today
    assert (await airtime("75"))["75"] == 0, "Đồng Nai's units did not exist in June"
    assert (await airtime("70"))["689"] == 2, "the record: both under old district 689"
    assert (await airtime("70", units="today"))["70"] == 0, "no cluster is in 70 today"

    async def statistics(area: str, **more: str) -> dict[str, Any]:
        got = await stack.client.get(
            "/api/v1/central/statistics", params={"area": area, **june, **more}
        )
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    then_70 = await statistics("70")
    # each emergency sent is also a bulletin (topic "emergency") of the sender's area,
    # here the province
    assert then_70["broadcasts"] == 2
    assert then_70["bulletins_by_topic"] == {"flood": 1, "emergency": 2}
    ward = await statistics("25195", units="today")
    assert ward["broadcasts"] == 1 and ward["bulletins_by_topic"] == {"flood": 1}
    assert (await statistics("25195"))["broadcasts"] == 0, "the ward began on 1 July"

    report = await stack.client.get(
        "/api/v1/reports/monthly", params={"area": "75", "month": "2025-06", "units": "today"}
    )
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["units"] == "today" and body["totals"]["broadcasts"] == 2
    by_ward = {a["area_code"]: a["broadcasts"] for a in body["areas"]}
    assert by_ward["25195"] == 1 and by_ward["25217"] == 1
    refused = await stack.client.get(
        "/api/v1/reports/monthly", params={"area": "75", "month": "2025-06", "units": "someday"}
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "query.units"


async def test_the_ward_that_took_over_a_commune_reads_its_history(
    stack_factory: Callable[..., Awaitable[Stack]], tone_mp3: Path
) -> None:
    """After the reform Phường Bình Phước's (25195) operator reads the history of Tân Đồng
    (25198), dissolved into it, in the API and the console (which says where it went and
    lists it as a former unit), but not Thác Mơ's (25216, now 25217's), and still cannot
    send there; the reports page switches between the units then and today."""
    clock = ManualClock(datetime(2025, 6, 20, 3, 0, tzinfo=UTC))
    stack = await stack_factory(clock=clock)
    await small_province(stack)
    area = {"code": "25198", "name": "Phường Tân Đồng", "level": "commune", "parent_code": "689"}
    assert (await stack.client.post("/api/v1/areas", json=area)).status_code == 201
    clock.set(datetime(2025, 7, 2, 3, 0, tzinfo=UTC))
    applied = await stack.client.post(
        "/api/v1/areas/reorganise", json={"effective": "2025-07-01", "dry_run": False}
    )
    assert applied.status_code == 200, applied.text
    await make_user(stack, "phuong.binhphuoc", role="commune_operator", area="25195")
    token = await signed_in(stack, "phuong.binhphuoc")
    bearer = {"Authorization": f"Bearer {token}"}
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}

    def read(area: str) -> Any:
        return stack.client.get("/api/v1/reports/airtime", params={"area": area}, headers=bearer)

    assert (await read("25198")).status_code == 200, "its heir reads it"
    assert (await read("25216")).status_code == 403, "another ward's predecessor"
    assert (await read("70")).status_code == 403, "the old province is not the ward's"
    send = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Tin", "class": "normal", "areas": ["25198"], "text": "x"},
        headers=bearer,
    )
    assert send.status_code == 403 and send.json()["detail"]["missing"] == "area", send.text

    old = await stack.client.get("/console/reports?area=25198", headers=cookie)
    assert old.status_code == 200, old.text
    assert 'id="dissolved"' in old.text and 'href="?area=25195' in old.text
    ward = await stack.client.get("/console/reports?area=25195&units=today", headers=cookie)
    assert ward.status_code == 200, ward.text
    former = ward.text.split('id="predecessors"', 1)[1]
    assert 'href="?area=25198' in former and "25216" not in former
    assert 'units=today" aria-current="page"' in ward.text
    other = await stack.client.get("/console/reports?area=25216", headers=cookie)
    assert other.status_code == 403


async def test_an_operation_mid_change_reaches_a_moving_cluster_once(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    """A technician's operation to an area during the change names its moving clusters on
    their own topic too, as a broadcast does (both resolve their targets through
    broadcast.service.addressed): a test tone to the new ward 25217 sounds once on Thác
    Mơ's cluster, still on its old topics; one to the continuing ward 25195 sounds once on
    its cluster, which hears it twice (the ward's old topic and its own) and acts once."""
    province = await small_province(stack)
    fleet = fleet_factory(province.online(), time_compression=10)
    await fleet.start()
    await apply(
        stack.runtime.sessions,
        stack.runtime.writing,
        stack.runtime.clock,
        stack.settings,
        VietnamProvinces(),
        EFFECTIVE,
        actor="test",
        stop_after="schedules",
    )
    for ward, code in (("25217", "25216-01"), ("25195", "25195-01")):
        created = await stack.client.post(
            "/api/v1/operations",
            json={"kind": "test_tone", "areas": [ward], "params": {"seconds": 1}},
        )
        assert created.status_code == 201, created.text
        operation = created.json()["id"]
        async with session_scope(stack.runtime.sessions) as session:
            named = await session.scalar(
                select(Operation.target_clusters).where(Operation.id == operation)
            )
        # Named in the first publication, not left to the re-send of unanswered ones.
        assert named is not None and code in named, named

        async def read(operation: str = operation) -> dict[str, Any]:
            data: dict[str, Any] = (
                await stack.client.get(f"/api/v1/operations/{operation}")
            ).json()
            return data

        done = await eventually(
            read, lambda o: o["counts"].get("done", 0) == 1, what=f"{code}'s test tone"
        )
        assert {r["cluster"]: r["state"] for r in done["results"]}[code] == "done"
        assert fleet.devices[code].test_tones == 1, "sounded once"
    assert fleet.devices["25231-01"].test_tones == 0, "no cluster outside"
