"""The scheduler against a real stack: a clock the test moves (no sleeping), real
clusters that play what fires, restarts across a slot, overlaps refused before saving."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app.jobs import fire_schedules
from broadcast.models import Broadcast
from core.clock import ManualClock
from core.database import session_scope
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually

VN = ZoneInfo("Asia/Ho_Chi_Minh")
StackFactory = Callable[..., Awaitable[Stack]]


def future_minute() -> datetime:
    """A slot two hours ahead of real time: clusters check expiry with their own clock, so
    the test's clock may run ahead of theirs but never behind."""
    return (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)


def local(instant: datetime) -> str:
    return instant.astimezone(VN).replace(tzinfo=None).isoformat()


async def ticks(stack: Stack, n: int = 2) -> None:
    """Let the scheduler run n times at the clock's current time."""
    assert stack.runtime.jobs is not None
    await stack.runtime.jobs.wait_ticks(n)


async def firings(stack: Stack, schedule_id: str) -> list[dict[str, Any]]:
    response = await stack.client.get(f"/api/v1/schedules/{schedule_id}/firings")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def broadcasts(stack: Stack) -> int:
    async with session_scope(stack.runtime.sessions) as session:
        return await session.scalar(select(func.count()).select_from(Broadcast)) or 0


async def news_schedule(
    stack: Stack, clip: dict[str, Any], slot: datetime, **extra: Any
) -> dict[str, Any]:
    bulletin = await approved_bulletin(stack, title="Bản tin sáng", media_sha256=clip["sha256"])
    body = {
        "title": "Bản tin sáng",
        "bulletin_id": bulletin["id"],
        "starts_local": local(slot),
        "rule": "FREQ=DAILY",
        "areas": ["25195"],
        **extra,
    }
    response = await stack.client.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_a_daily_slot_fires_once_on_time_and_the_clusters_play_it(
    stack_factory: StackFactory, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    slot = future_minute()
    clock = ManualClock(slot - timedelta(seconds=30))
    stack = await stack_factory(clock=clock)
    specs = (await small_province(stack)).of("25195")
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    schedule = await news_schedule(stack, await upload(stack, tone_mp3), slot)
    assert schedule["next_fire_at"] == slot.isoformat().replace("+00:00", "Z")

    await ticks(stack)
    assert await firings(stack, schedule["id"]) == [], "not before its time"
    clock.set(slot + timedelta(seconds=0.2))
    await ticks(stack)
    [fired] = await firings(stack, schedule["id"])
    assert fired["outcome"] == "on_time" and fired["broadcast_id"]
    done = await stack.wait_broadcast(
        fired["broadcast_id"], lambda b: counts(b, "played") == len(specs)
    )
    assert done["class"] == "normal" and done["sent_by"] == "scheduler"

    await ticks(stack, 3)
    assert len(await firings(stack, schedule["id"])) == 1, "a slot fires once"
    after = (await stack.client.get(f"/api/v1/schedules/{schedule['id']}")).json()
    assert after["next_fire_at"] == (slot + timedelta(days=1)).isoformat().replace("+00:00", "Z")


async def test_a_scheduler_restarted_across_a_slot_plays_it_late_not_twice(
    stack_factory: StackFactory, tone_mp3: Path
) -> None:
    slot = future_minute()
    clock = ManualClock(slot - timedelta(seconds=10))
    first = await stack_factory(clock=clock)
    await small_province(first)
    schedule = await news_schedule(first, await upload(first, tone_mp3), slot)
    await ticks(first)
    await first.stop()  # down across the slot

    clock.set(slot + timedelta(seconds=40))
    second = await stack_factory(clock=clock)
    await ticks(second)
    [fired] = await firings(second, schedule["id"])
    assert fired["outcome"] == "late" and fired["broadcast_id"]
    await ticks(second, 3)
    assert len(await firings(second, schedule["id"])) == 1
    assert await broadcasts(second) == 1


async def test_slots_beyond_the_grace_window_are_recorded_missed(
    stack_factory: StackFactory, tone_mp3: Path
) -> None:
    slot = future_minute()
    clock = ManualClock(slot - timedelta(seconds=10))
    first = await stack_factory(clock=clock, schedule_grace_s=60)
    await small_province(first)
    schedule = await news_schedule(
        first, await upload(first, tone_mp3), slot, plays=3, gap_s=120, accept_conflicts=True
    )
    await first.stop()

    clock.set(slot + timedelta(seconds=250))  # plays at +0 and +120 s missed, +240 s late
    second = await stack_factory(clock=clock, schedule_grace_s=60)
    await ticks(second)
    outcomes = [
        (f["outcome"], f["broadcast_id"] is not None) for f in await firings(second, schedule["id"])
    ]
    assert outcomes == [("missed", False), ("missed", False), ("late", True)]
    assert await broadcasts(second) == 1


async def test_overlaps_are_reported_before_saving(stack: Stack, tone_mp3: Path) -> None:
    specs = (await small_province(stack, clusters_per_commune=2)).specs  # three in 25195
    clip = await upload(stack, tone_mp3)
    slot = future_minute()
    first = await news_schedule(stack, clip, slot)
    bulletin = await approved_bulletin(stack, title="Thông báo", media_sha256=clip["sha256"])
    clash = {
        "title": "Thông báo tiêm phòng",
        "bulletin_id": bulletin["id"],
        "starts_local": local(slot),
        "rule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU",
        "areas": ["25195"],
    }
    checked = await stack.client.post("/api/v1/schedules/check", json=clash)
    assert checked.status_code == 200
    [overlap] = checked.json()
    assert overlap["schedule_id"] == first["id"] and overlap["overlaps"] >= 13
    refused = await stack.client.post("/api/v1/schedules", json=clash)
    assert refused.status_code == 409
    assert refused.json()["detail"]["conflicts"][0]["schedule_id"] == first["id"]

    # Different clusters of one commune may play different content in the same slot.
    commune = [s.code for s in specs if "25195" in s.areas and s.kind == "speaker_cluster"]
    others = [c for c in commune if c not in first["target_clusters"]]
    narrowed = await stack.client.patch(
        f"/api/v1/schedules/{first['id']}", json={"areas": [], "clusters": commune[:2]}
    )
    assert narrowed.status_code == 200 and narrowed.json()["version"] == 2
    apart = await stack.client.post(
        "/api/v1/schedules", json={**clash, "areas": [], "clusters": others[2:]}
    )
    assert apart.status_code == 201, apart.text
    assert apart.json()["conflicts"] == []
    accepted = await stack.client.post(
        "/api/v1/schedules", json={**clash, "accept_conflicts": True}
    )
    assert accepted.status_code == 201 and len(accepted.json()["conflicts"]) == 2
    page = (await stack.client.get("/api/v1/schedules", params={"limit": 2})).json()
    assert page["total"] == 3 and page["items"][0]["id"] == first["id"]
    assert len(page["items"]) == 2


async def test_a_commune_day_and_week_in_local_time(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    slot = future_minute()
    if slot.astimezone(VN).date() != (slot + timedelta(minutes=5)).astimezone(VN).date():
        slot += timedelta(minutes=10)  # both plays on one local day (run near midnight)
    schedule = await news_schedule(stack, await upload(stack, tone_mp3), slot, plays=2, gap_s=300)
    first_day = slot.astimezone(VN).date().isoformat()
    day = await stack.client.get(
        "/api/v1/schedules/calendar", params={"area": "25195", "day": first_day}
    )
    assert day.status_code == 200
    starts = [s["starts_local"] for s in day.json()]
    assert starts[:2] == [local(slot), local(slot + timedelta(minutes=5))]
    assert all(s["schedule_id"] == schedule["id"] for s in day.json())
    week = await stack.client.get(
        "/api/v1/schedules/calendar", params={"area": "25195", "day": first_day, "days": 7}
    )
    assert len(week.json()) in (13, 14), "two plays a day for a week, from today's slot on"
    elsewhere = await stack.client.get(
        "/api/v1/schedules/calendar", params={"area": "25216", "day": first_day}
    )
    assert elsewhere.json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rule": "FREQ=SOMETIMES"}, "rule"),
        ({"starts_local": "2026-12-01T06:00:00+07:00"}, "starts_local"),
        ({"class": "emergency"}, "class"),
        ({"timezone": "Mars/Olympus"}, "rule"),
    ],
)
async def test_bad_schedules_name_the_problem(
    stack: Stack, tone_mp3: Path, body: dict[str, Any], field: str
) -> None:
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="x", media_sha256=clip["sha256"])
    base = {
        "title": "x",
        "bulletin_id": bulletin["id"],
        "starts_local": "2026-12-01T06:00:00",
        "areas": ["25195"],
    }
    response = await stack.client.post("/api/v1/schedules", json={**base, **body})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    named = detail["field"] if isinstance(detail, dict) else detail[0]["field"]
    assert named == field


async def test_two_schedulers_on_one_database_fire_a_slot_once(
    stack_factory: StackFactory, database_url: str, tone_mp3: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two schedulers need PostgreSQL; SQLite runs one instance")
    slot = future_minute()
    clock = ManualClock(slot - timedelta(seconds=10))
    one = await stack_factory(clock=clock)
    two = await stack_factory(clock=clock)
    await small_province(one)
    schedule = await news_schedule(one, await upload(one, tone_mp3), slot)
    await eventually(lambda: leaders(one, two), lambda n: n == 1, what="one leader")
    leader = one if one.runtime.jobs and one.runtime.jobs.leading else two
    clock.set(slot)
    await ticks(leader, 3)  # the standby does not tick: it waits for the lock
    assert len(await firings(one, schedule["id"])) == 1
    assert await broadcasts(one) == 1

    # Without the leader lock too: both fire the next slot at once, the slot row decides.
    clock.set(slot + timedelta(days=1))

    for stack in (one, two):  # only the test fires now
        assert stack.runtime.jobs is not None
        await stack.runtime.jobs.stop()
    sent = await asyncio.gather(fire_schedules(one.runtime), fire_schedules(two.runtime))
    assert sorted(sent) == [0, 1]
    assert len(await firings(one, schedule["id"])) == 2
    assert await broadcasts(one) == 2


async def leaders(*stacks: Stack) -> int:
    return sum(1 for s in stacks if s.runtime.jobs is not None and s.runtime.jobs.leading)


async def test_a_slot_many_communes_share_fires_at_once_and_one_bad_slot_spoils_none(
    stack_factory: StackFactory, tone_mp3: Path
) -> None:
    """Slots due together are written in batches; a batch with one slot that cannot air (its
    bulletin was archived after scheduling) is rolled back and fired slot by slot, so that
    one is recorded skipped and every other commune still plays on time."""
    from schedules.jobs import FIRE_BATCH

    slot = future_minute()
    clock = ManualClock(slot - timedelta(seconds=30))
    stack = await stack_factory(clock=clock)
    # More communes than a batch holds, in one district (codes made up past the real ones).
    many = {"689": [str(26000 + i) for i in range(FIRE_BATCH + 5)]}
    specs = (await small_province(stack, districts=many)).specs
    clip = await upload(stack, tone_mp3)
    communes = sorted({s.areas[-1] for s in specs})
    assert len(communes) == FIRE_BATCH + 5
    news = await approved_bulletin(stack, title="Bản tin sáng", media_sha256=clip["sha256"])
    pulled = await approved_bulletin(stack, title="Tin đã rút", media_sha256=clip["sha256"])
    schedules: dict[str, str] = {}
    for i, commune in enumerate(communes):
        bulletin = pulled if i == 3 else news
        response = await stack.client.post(
            "/api/v1/schedules",
            json={
                "title": f"Bản tin sáng {commune}",
                "bulletin_id": bulletin["id"],
                "starts_local": local(slot),
                "rule": "FREQ=DAILY",
                "areas": [commune],
            },
        )
        assert response.status_code == 201, response.text
        schedules[commune] = response.json()["id"]
    archived = await stack.client.post(f"/api/v1/bulletins/{pulled['id']}/archive")
    assert archived.status_code == 200, archived.text

    clock.set(slot + timedelta(seconds=0.3))
    await ticks(stack)
    outcomes = {c: [f["outcome"] for f in await firings(stack, s)] for c, s in schedules.items()}
    assert outcomes.pop(communes[3]) == ["skipped"]
    assert set(map(tuple, outcomes.values())) == {("on_time",)}
    assert await broadcasts(stack) == len(communes) - 1
