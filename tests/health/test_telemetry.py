"""Fleet health from real heartbeats: the latest state and a sampled history per cluster,
clusters that go silent, the rollup worst first, the office's CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.clock import ManualClock
from health import service as health_service
from simulator.fleet import Fleet
from tests.factories import small_province
from tests.support import Stack, eventually

COMMUNE = "25216"


async def _health(stack: Stack, code: str) -> dict[str, Any]:
    response = await stack.client.get(f"/api/v1/clusters/{code}/health")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_heartbeats_keep_the_latest_state_and_a_sampled_history(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    # Five speakers, all run, and an e-board that stays offline.
    province = await small_province(stack, clusters_per_commune=4, eboards=True)
    specs = province.speakers(COMMUNE)
    fleet = fleet_factory(specs)  # heartbeats every 60 s: the test asks for them at once
    await fleet.start()
    mains, battery, hot, broken, skewed = (fleet.devices[s.code] for s in specs[:5])

    async def heard(device_code: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return await eventually(
            lambda: _health(stack, device_code),
            lambda h: h["telemetry"] is not None and check(h),
            what=f"telemetry of {device_code}",
        )

    battery.condition.lose_mains()
    hot.condition.amp_temp_c = 82.5
    broken.condition.speaker_faults = (2,)
    skewed.condition.clock_skew_s = 30.0
    for device in (mains, battery, hot, broken, skewed):
        assert device.heartbeat_now()

    first = await heard(mains.spec.code, lambda h: True)
    telemetry = first["telemetry"]
    assert telemetry["power"] == "mains" and telemetry["amp_on"] is True
    assert abs(telemetry["clock_offset_s"]) < 2 and first["faulty"] is False
    assert len(first["history"]) == 1, "the first heartbeat starts the history"
    on_battery = await heard(battery.spec.code, lambda h: h["telemetry"]["power"] == "battery")
    assert on_battery["telemetry"]["supply_v"] == 12.4 and on_battery["faulty"] is False
    assert (await heard(hot.spec.code, lambda h: True))["faulty"] is True
    assert (await heard(broken.spec.code, lambda h: True))["telemetry"]["speaker_faults"] == [2]
    drift = (await heard(skewed.spec.code, lambda h: True))["telemetry"]["clock_offset_s"]
    assert 28 < drift < 32

    # Nothing new within the sampling interval: the state moves on, the history does not.
    received = telemetry["received_at"]
    assert mains.heartbeat_now()
    again = await heard(mains.spec.code, lambda h: h["telemetry"]["received_at"] != received)
    assert len(again["history"]) == 1
    # Mains lost: a notable change is sampled at once.
    mains.condition.lose_mains()
    assert mains.heartbeat_now()
    lost = await heard(mains.spec.code, lambda h: h["telemetry"]["power"] == "battery")
    assert [s["power"] for s in lost["history"]] == ["battery", "mains"], "newest first"

    [commune, *_] = (await stack.client.get("/api/v1/health", params={"area": COMMUNE})).json()
    assert commune["area_code"] == COMMUNE
    n = len([path for path in await _area_paths(stack) if COMMUNE in path.split("/")])
    assert commune["total"] == n and commune["online"] == len(specs)
    assert commune["faulty"] == 2 and commune["on_battery"] == 2
    assert commune["not_working"] == (n - len(specs)) + 2

    exported = await stack.client.get("/api/v1/health/export.csv", params={"area": COMMUNE})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert rows[broken.spec.code]["speaker_faults"] == "2"
    assert rows[hot.spec.code]["faulty"] == "True" and rows[mains.spec.code]["power"] == "battery"


async def _area_paths(stack: Stack) -> list[str]:
    """Each registered cluster's area path (e-boards too), from the register."""
    response = await stack.client.get("/api/v1/clusters/provisioning")
    return ["/".join(c["areas"]) for c in response.json()]


async def test_a_silent_cluster_goes_offline_after_missed_heartbeats_and_not_after_one(
    stack_factory: Callable[..., Awaitable[Stack]], fleet_factory: Callable[..., Fleet]
) -> None:
    clock = ManualClock(datetime.now(UTC))
    stack = await stack_factory(clock=clock, heartbeat_s=60, offline_after_missed=3)
    [spec] = [s for s in (await small_province(stack)).online() if COMMUNE in s.areas]
    fleet = fleet_factory([spec])
    await fleet.start()
    device = fleet.devices[spec.code]
    assert device.heartbeat_now()
    seen = await eventually(
        lambda: _health(stack, spec.code),
        lambda h: h["telemetry"] is not None and h["online"],
        what="its first heartbeat",
    )
    last_seen = seen["last_seen_at"]
    device.condition.hung = True  # still connected: no Last Will will come

    assert stack.runtime.jobs is not None
    clock.set(clock.now() + timedelta(seconds=100))  # one heartbeat late: not an outage
    await stack.runtime.jobs.wait_ticks(2)
    assert (await _health(stack, spec.code))["online"] is True
    clock.set(clock.now() + timedelta(seconds=100))  # three missed: offline since last heard
    await stack.runtime.jobs.wait_ticks(2)
    silent = await _health(stack, spec.code)
    assert silent["online"] is False and silent["offline_since"] == last_seen

    device.condition.hung = False
    assert device.heartbeat_now()
    back = await eventually(
        lambda: _health(stack, spec.code), lambda h: h["online"], what="back online"
    )
    assert back["offline_since"] is None


async def test_the_rollup_lists_the_worst_area_first(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    province = await small_province(stack)
    specs = province.specs
    district = next(s.areas[1] for s in specs if COMMUNE in s.areas)
    fleet = fleet_factory(province.of(COMMUNE))  # the rest never came up
    await fleet.start()

    async def rollup() -> list[dict[str, Any]]:
        response = await stack.client.get("/api/v1/health", params={"area": district})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()
        return data

    own, *children = await eventually(
        rollup, lambda r: r[0]["online"] == len(fleet), what="the commune's clusters online"
    )
    assert own["area_code"] == district
    assert own["total"] == sum(1 for s in specs if district in s.areas)
    assert children[-1]["area_code"] == COMMUNE, "the only commune that works comes last"
    assert all(c["not_working"] == c["total"] for c in children[:-1])
    shares = [c["not_working"] / c["total"] for c in children if c["total"]]
    assert shares == sorted(shares, reverse=True)
    assert (await stack.client.get("/api/v1/health", params={"area": "nope"})).status_code == 404


async def test_history_past_its_retention_is_dropped(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    [spec] = [s for s in (await small_province(stack)).online() if COMMUNE in s.areas]
    fleet = fleet_factory([spec])
    await fleet.start()
    assert fleet.devices[spec.code].heartbeat_now()
    await eventually(
        lambda: _health(stack, spec.code), lambda h: len(h["history"]) == 1, what="a sample"
    )
    settings = stack.settings
    later = datetime.now(UTC) + timedelta(hours=settings.telemetry_retention_h, minutes=1)
    async with stack.runtime.writing() as session:
        assert await health_service.forget_old_samples(session, now=later, settings=settings) == 1
    assert (await _health(stack, spec.code))["history"] == []


async def test_the_last_heartbeat_to_arrive_wins_whatever_its_clock_says(stack: Stack) -> None:
    """A clock that starts drifting makes the newest heartbeat look older: arrival order,
    not the device's time, decides which one is the latest state."""
    from wire.protocol import Heartbeat

    [spec] = [s for s in (await small_province(stack)).online() if COMMUNE in s.areas]
    now = datetime.now(UTC)
    async with stack.runtime.writing() as session:
        from devices import repository as device_repository

        cid = (await device_repository.ids_by_code(session, {spec.code}))[spec.code]
        batch = [
            health_service.Observed(cid, Heartbeat(cluster=spec.code, at=now, seq=1), now),
            health_service.Observed(
                cid, Heartbeat(cluster=spec.code, at=now - timedelta(seconds=40), seq=2), now
            ),
        ]
        await health_service.record_heartbeats(session, batch, settings=stack.settings)
    telemetry = (await _health(stack, spec.code))["telemetry"]
    assert telemetry["clock_offset_s"] == -40.0
