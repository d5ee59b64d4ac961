"""Alarms from real simulated clusters: raised once per episode, acknowledged by a person,
cleared when the condition ends; offline too long is an alarm, a flapping link is not."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.clock import ManualClock
from core.settings import Settings
from health.alarms import DEFER_MAX_S, AlarmKind, _State, conditions, due
from simulator.fleet import Fleet
from tests.factories import small_province
from tests.support import Stack, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient

COMMUNE = "25216"
TECHNICIAN = {"x-actor": "ky.thuat.vien", "x-role": "technician"}


async def _alarms(stack: Stack, **params: Any) -> list[dict[str, Any]]:
    response = await stack.client.get("/api/v1/alarms", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def test_an_alarm_is_raised_once_acknowledged_and_cleared_per_episode(
    stack_factory: Callable[..., Awaitable[Stack]], fleet_factory: Callable[..., Fleet]
) -> None:
    stack = await stack_factory(alarm_evaluate_s=0)  # evaluated at every tick
    # Six speakers: five with a fault each, one well (no alarm of its own).
    specs = (await small_province(stack, clusters_per_commune=5)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    battery, hot, broken, tripped, skewed = (fleet.devices[s.code] for s in specs[:5])
    battery.condition.lose_mains()
    hot.condition.amp_temp_c = 81.0
    broken.condition.speaker_faults = (1, 3)
    tripped.condition.relay_trip = "overvoltage"
    skewed.condition.clock_skew_s = -40.0
    for _ in range(3):  # three heartbeats of the same outage: still one alarm
        for device in (battery, hot, broken, tripped, skewed):
            assert device.heartbeat_now()
    expected = {
        battery.spec.code: "on_battery",
        hot.spec.code: "amp_overheat",
        broken.spec.code: "speaker_line",
        tripped.spec.code: "relay_trip",
        skewed.spec.code: "clock_drift",
    }

    async def skew_page() -> dict[str, Any]:
        response = await stack.client.get(f"/api/v1/clusters/{skewed.spec.code}/health")
        data: dict[str, Any] = response.json()
        return data

    skew = await eventually(
        skew_page,
        lambda p: (p["telemetry"] or {}).get("clock_offset_s", 0) < -35,
        what="the skewed clock reported",
    )
    assert skew["online"] is True
    raised = await eventually(
        lambda: _alarms(stack, area=COMMUNE),
        lambda a: {(x["cluster"], x["kind"]) for x in a} == set(expected.items()),
        what="one alarm per condition",
    )
    assert len(raised) == len(expected)
    assert stack.runtime.jobs is not None
    await stack.runtime.jobs.wait_ticks(3)
    assert len(await _alarms(stack, area=COMMUNE, open="false")) == len(expected)
    detail = {x["kind"]: x["detail"] for x in raised}
    assert "12.4 V" in detail["on_battery"] and "1, 3" in detail["speaker_line"]
    # The offset is measured on arrival, so the message's transit adds to the -40 s skew
    # (-41.0 s seen on a loaded machine): the detail names the measured offset.
    drift = re.fullmatch(r"clock off by ([+-]\d+\.\d) s", detail["clock_drift"])
    assert drift is not None and -42.0 <= float(drift.group(1)) <= -39.5, detail
    page = (await stack.client.get(f"/api/v1/clusters/{battery.spec.code}/health")).json()
    assert [a["kind"] for a in page["alarms"]] == ["on_battery"]

    [alarm] = await _alarms(stack, cluster=battery.spec.code)
    acked = await stack.client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", headers=TECHNICIAN)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "ky.thuat.vien"
    again = await stack.client.post(
        f"/api/v1/alarms/{alarm['id']}/acknowledge",
        headers={"x-actor": "someone", "x-role": "technician"},
    )
    assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"], "the first stands"
    assert (await stack.client.post("/api/v1/alarms/999999/acknowledge")).status_code == 404

    battery.condition.power, battery.condition.supply_v = "mains", 220.0
    assert battery.heartbeat_now()
    await eventually(
        lambda: _alarms(stack, cluster=battery.spec.code), lambda a: a == [], what="cleared"
    )
    [episode] = await _alarms(stack, cluster=battery.spec.code, open="false")
    assert episode["cleared_at"] is not None and episode["acknowledged_by"] == "ky.thuat.vien"

    battery.condition.lose_mains()  # a second outage is a second episode
    assert battery.heartbeat_now()
    await eventually(
        lambda: _alarms(stack, cluster=battery.spec.code, open="false"),
        lambda a: len(a) == 2 and a[0]["cleared_at"] is None,
        what="a new episode",
    )


async def test_a_cluster_playing_what_we_never_sent_raises_an_alarm(
    stack_factory: Callable[..., Awaitable[Stack]], fleet_factory: Callable[..., Fleet]
) -> None:
    stack = await stack_factory(alarm_evaluate_s=0)
    [spec] = [s for s in (await small_province(stack)).online() if COMMUNE in s.areas]
    # What a cluster taken over by someone else would report: playing an unknown broadcast.
    rogue = LiteClient("rogue-heartbeat", lambda _t, _p: None)
    await rogue.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    heartbeat = protocol.Heartbeat(cluster=spec.code, at=datetime.now(UTC), playing="not-ours")
    future = rogue.publish(protocol.heartbeat_topic(spec.code), heartbeat.to_json())
    assert future is not None
    await future
    await rogue.disconnect()
    [alarm] = await eventually(
        lambda: _alarms(stack, cluster=spec.code), lambda a: len(a) == 1, what="the alarm"
    )
    assert alarm["kind"] == "off_schedule" and "not-ours" in alarm["detail"]


async def test_offline_too_long_is_an_alarm_and_a_flapping_link_is_not(
    stack_factory: Callable[..., Awaitable[Stack]], fleet_factory: Callable[..., Fleet]
) -> None:
    clock = ManualClock(datetime.now(UTC))
    stack = await stack_factory(
        clock=clock, alarm_evaluate_s=0, offline_alarm_after_s=300, heartbeat_s=3600
    )
    specs = (await small_province(stack)).of(COMMUNE)  # "-01" and "-09"
    fleet = fleet_factory(specs)
    await fleet.start()
    gone, flapping = (fleet.devices[s.code] for s in specs)

    async def online(code: str) -> bool:
        return bool((await stack.client.get(f"/api/v1/clusters/{code}")).json()["online"])

    await eventually(lambda: online(gone.spec.code), lambda o: o, what="online")
    await fleet.stop([gone.spec.code], clean=False)  # no goodbye: the broker sends its Will
    await eventually(lambda: online(gone.spec.code), lambda o: not o, what="its Last Will")
    for _ in range(3):  # a weak 4G link: down and straight back up
        flapping.drop_link()
        await eventually(lambda: online(flapping.spec.code), lambda o: not o, what="dropped")
        await flapping.online.wait()
        await eventually(lambda: online(flapping.spec.code), lambda o: o, what="back")

    assert stack.runtime.jobs is not None
    clock.set(clock.now() + timedelta(seconds=100))
    await stack.runtime.jobs.wait_ticks(2)
    assert await _alarms(stack, area=COMMUNE, open="false") == [], "not yet too long"
    clock.set(clock.now() + timedelta(seconds=300))
    [alarm] = await eventually(
        lambda: _alarms(stack, area=COMMUNE), lambda a: len(a) == 1, what="the offline alarm"
    )
    assert alarm["cluster"] == gone.spec.code and alarm["kind"] == "offline"
    await stack.runtime.jobs.wait_ticks(2)
    assert len(await _alarms(stack, area=COMMUNE, open="false")) == 1, "the flapping one: none"


def test_a_schedule_not_confirmed_in_time_is_an_alarm_only_while_online() -> None:
    settings = Settings(schedule_stale_alarm_s=300, offline_alarm_after_s=300)
    now = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)

    def state(**changes: Any) -> _State:
        values: dict[str, Any] = {
            "cluster_id": 1,
            "online": True,
            "offline_since": None,
            "schedule_version": 7,
            "schedule_version_held": 6,
            "schedule_pushed_at": now - timedelta(seconds=301),
            "health": None,
        }
        return _State(**{**values, **changes})

    def kinds(s: _State) -> set[AlarmKind]:
        return set(conditions(s, now=now, settings=settings, sent=True))

    assert kinds(state()) == {AlarmKind.SCHEDULE_STALE}
    assert kinds(state(schedule_pushed_at=now - timedelta(seconds=200))) == set(), "give it time"
    assert kinds(state(schedule_version_held=7)) == set()
    offline = state(online=False, offline_since=now - timedelta(seconds=299))
    assert kinds(offline) == set(), "offline, not yet too long; its stale schedule is moot"
    offline = state(online=False, offline_since=now - timedelta(seconds=300))
    assert kinds(offline) == {AlarmKind.OFFLINE}


def test_alarms_wait_while_a_broadcasts_answers_are_unread_but_not_for_ever() -> None:
    def evaluated(since_last_s: float, *, answers_unread: bool) -> bool:
        return due(since_last_s=since_last_s, interval_s=5, answers_unread=answers_unread)

    assert not evaluated(4.9, answers_unread=False), "not before their time"
    assert evaluated(5, answers_unread=False)
    assert not evaluated(5, answers_unread=True), "an emergency's confirmations come first"
    assert not evaluated(5 + DEFER_MAX_S - 0.1, answers_unread=True)
    assert evaluated(5 + DEFER_MAX_S, answers_unread=True), "a flood of answers delays, never stops"
