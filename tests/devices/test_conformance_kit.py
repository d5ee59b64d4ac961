"""The vendors' conformance kit (`broadcast conformance`, app/conformance.py) run against
the simulator, a device that follows docs/protocol.md: every check passes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.conformance import Kit, report
from simulator.fleet import Fleet
from tests.factories import small_province
from tests.support import Stack

DEVICE = "25216-01"
HEARTBEAT_S = 2.0


def _kit(stack: Stack) -> Kit:
    return Kit(
        api_url=str(stack.client.base_url),
        device=DEVICE,
        mqtt_host=stack.settings.mqtt_host,
        mqtt_port=stack.settings.mqtt_port,
        timeout_s=20,
        heartbeat_s=HEARTBEAT_S,
    )


async def test_the_simulator_passes_every_check(
    stack: Stack, fleet_factory: Callable[..., Fleet], database_url: str
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("the device's conformance does not depend on the database")
    specs = [s for s in (await small_province(stack)).specs if s.code == DEVICE]
    # Heartbeats every 2 s (a minute in the field) and time compressed tenfold: the same
    # checks in seconds.
    fleet = fleet_factory(specs, time_compression=10, heartbeat_s=HEARTBEAT_S)
    await fleet.start()
    checks = await asyncio.to_thread(_kit(stack).run)
    print(report(checks))
    assert not any(c.failed for c in checks), report(checks)
    assert {c.section for c in checks} >= {"3", "4, 5", "4.6", "9", "4.1"}
    device = fleet.devices[DEVICE]
    assert device.rejected and any(r.startswith("unsigned") for r in device.rejected)
