"""The daily silent self-test: it runs once a day at its time, every cluster checks the
whole path without a sound, and the morning report names exactly the clusters that
would not have played an emergency, by commune."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.clock import ManualClock
from simulator.fleet import Fleet
from simulator.spec import Faults
from tests.factories import small_province
from tests.support import Stack, eventually

VN = ZoneInfo("Asia/Ho_Chi_Minh")
COMMUNE = "25216"


def _tomorrow_at(hour: int, minute: int) -> datetime:
    """Ahead of real time: clusters check expiry by their own clocks."""
    local = datetime.now(VN) + timedelta(days=1)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0).astimezone(UTC)


async def _report(stack: Stack) -> dict[str, Any]:
    response = await stack.client.get("/api/v1/self-test/report", params={"area": COMMUNE})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_the_morning_report_names_exactly_the_clusters_that_would_stay_silent(
    stack_factory: Callable[..., Awaitable[Stack]], fleet_factory: Callable[..., Fleet]
) -> None:
    clock = ManualClock(_tomorrow_at(3, 29))
    stack = await stack_factory(clock=clock, self_test_at=time(3, 30), self_test_window_s=600)
    # Six speakers (five to fail, one to pass) and an e-board that passes too.
    specs = (await small_province(stack, clusters_per_commune=5, eboards=True)).of(COMMUNE)
    speakers = [s for s in specs if s.kind == "speaker_cluster"]
    dead_amp, open_line, switched_off, corrupt, never_up = (s.code for s in speakers[:5])
    healthy = [s for s in specs if s.code not in (corrupt, never_up)]
    fleet = fleet_factory(healthy, time_compression=10)
    bad_download = fleet_factory(
        [s for s in specs if s.code == corrupt], faults=Faults(media_corrupt=1.0)
    )
    await fleet.start()
    await bad_download.start()
    fleet.devices[dead_amp].condition.amp_dead = True
    fleet.devices[open_line].condition.speaker_faults = (2,)
    fleet.devices[switched_off].condition.amp_on = False
    played_before = fleet.count(lambda d: sum(d.play_counts.values()) > 0)

    assert stack.runtime.jobs is not None
    await stack.runtime.jobs.wait_ticks(2)
    assert (await _report(stack))["operation_id"] is None, "not before its time"
    clock.set(_tomorrow_at(3, 31))

    async def answered() -> dict[str, Any]:
        return await _report(stack)

    report = await eventually(
        answered,
        lambda r: (
            r["operation_id"] is not None
            and sum(len(c["clusters"]) for c in r["communes"]) == 5
            and r["passed"] == len(specs) - 5
            and all(f["state"] != "accepted" for c in r["communes"] for f in c["clusters"])
        ),
        what="the self-test's answers",
    )
    [commune] = report["communes"]
    assert commune["area_code"] == COMMUNE and report["total"] == len(specs)
    reasons = {f["cluster"]: f["reason"] for f in commune["clusters"]}
    assert set(reasons) == {dead_amp, open_line, switched_off, corrupt, never_up}
    assert reasons[dead_amp] == "amplifier does not answer"
    assert "line(s) 2" in reasons[open_line] and "switched off" in reasons[switched_off]
    assert reasons[corrupt] == "media sha256 mismatch"
    assert reasons[never_up].startswith("no answer")
    # Silent: nothing played, and it runs once a day, not once a tick.
    assert fleet.count(lambda d: sum(d.play_counts.values()) > 0) == played_before
    await stack.runtime.jobs.wait_ticks(3)
    assert (await _report(stack))["operation_id"] == report["operation_id"]
