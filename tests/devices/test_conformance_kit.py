"""The vendors' conformance kit (`broadcast conformance`, conformance/) run against
the simulator, a device that follows docs/protocol.md: every check passes; and a device
that does not follow it fails the checks of the section it breaks."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.base import Check
from conformance.kit import Kit, report
from devstack.icecast import IcecastServer, StreamSource
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from simulator.spec import Faults
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack

DEVICE = "25216-01"  # every check (those that need more than the kit has are skipped)
SCHEDULED = "25195-01"  # the schedules', at the same time
EBOARD = "25216-05"  # the e-board's, a relay from the kit's own Icecast, firmware, meanwhile
MOVE_TO = "25231"  # in the other district: the device joins 695 and 25231, leaves 689, 25216
HEARTBEAT_S = 2.0
# The slot's command goes 2 s ahead (3 s in the field): so the schedules' slots can be
# 3.5 s ahead, and a device that started at once instead of at the slot would be seen.
PREFIRE_S = 2.0
TECHNICIAN = {"x-actor": "ky.thuat.vien", "x-role": "technician"}


def _kit(stack: Stack, device: str, **options: Any) -> Kit:
    return Kit(
        api_url=str(stack.client.base_url),
        device=device,
        mqtt_host=stack.settings.mqtt_host,
        mqtt_port=stack.settings.mqtt_port,
        timeout_s=20,
        heartbeat_s=HEARTBEAT_S,
        schedule_lead_s=PREFIRE_S + 1.5,
        link_down_after_slot_s=0.5,  # the simulator knows at once that its link is down
        **options,
    )


async def _fleet(
    stack: Stack,
    fleet_factory: Callable[..., Fleet],
    database_url: str,
    codes: tuple[str, ...] = (DEVICE, SCHEDULED, EBOARD),
    **options: Any,
) -> Fleet:
    """The devices under test, online. Heartbeats every 2 s (a minute in the field) and
    time compressed tenfold: the same checks in seconds."""
    _sqlite_only(database_url)
    await small_province(stack)
    eboard = {"code": EBOARD, "name": "Bảng tin", "kind": "eboard", "area_code": "25216"}
    assert (await stack.client.post("/api/v1/clusters", json=eboard)).status_code == 201
    specs = await fetch_specs(stack.settings.public_base_url)
    fleet = fleet_factory(
        [s for s in specs if s.code in codes],
        time_compression=10,
        heartbeat_s=HEARTBEAT_S,
        **options,
    )
    await fleet.start()
    return fleet


def _sqlite_only(database_url: str) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("the device's conformance does not depend on the database")


async def _bulletin(stack: Stack, clip: Path) -> str:
    """Approved by a second person, as the kit cannot (four eyes)."""
    media = await upload(stack, clip)
    bulletin = await approved_bulletin(stack, title="Thông báo", media_sha256=media["sha256"])
    bulletin_id: str = bulletin["id"]
    return bulletin_id


async def _firmware(stack: Stack, version: str) -> str:
    """Uploaded by a technician, approved by a second person."""
    uploaded = await stack.client.post(
        "/api/v1/firmware",
        data={"version": version},
        files={"file": (f"{version}.bin", os.urandom(50_000))},
        headers=TECHNICIAN,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert (await stack.client.post(f"/api/v1/firmware/{version}/approve")).status_code == 200
    return version


def _cut_link(fleet: Fleet, code: str) -> Callable[[float], None]:
    """What a vendor's bench does with a switch: the device off the network for a while
    (called from the kit's thread; the device lives on the test's loop)."""
    loop = asyncio.get_running_loop()

    def cut(seconds: float) -> None:
        loop.call_soon_threadsafe(fleet.devices[code].go_offline, seconds)

    return cut


def _run(kit: Kit) -> Awaitable[list[Check]]:
    return asyncio.to_thread(kit.run)


async def test_the_simulator_passes_every_check(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    database_url: str,
    icecast: IcecastServer,
    tone_mp3: Path,
) -> None:
    _sqlite_only(database_url)
    stack = await stack_factory(schedule_prefire_s=PREFIRE_S)
    fleet = await _fleet(stack, fleet_factory, database_url)
    bulletin, image = await asyncio.gather(
        _bulletin(stack, tone_mp3), _firmware(stack, "2.0.0-conformance")
    )
    issued = await stack.client.post(f"/api/v1/clusters/{DEVICE}/credentials")
    assert issued.status_code == 201, issued.text
    # Three devices checked at once (the whole kit on one would take twice as long).
    async with StreamSource(icecast, f"/kit-{uuid.uuid4().hex[:6]}.mp3") as stream:
        everything, scheduled, eboard = await asyncio.gather(
            _run(
                _kit(
                    stack,
                    DEVICE,
                    stream_url=stream.url,
                    move_to=MOVE_TO,
                    device_password=issued.json()["password"],
                )
            ),
            _run(
                _kit(
                    stack,
                    SCHEDULED,
                    only=frozenset({"11"}),
                    bulletin_id=bulletin,
                    cut_link=_cut_link(fleet, SCHEDULED),
                )
            ),
            _run(_kit(stack, EBOARD, only=frozenset({"4.4", "4.5", "4.7"}), firmware=image)),
        )
    checks = [*everything, *scheduled, *eboard]
    print(report(checks))
    assert not any(c.failed for c in checks), report(checks)
    passed = {c.section for c in checks if c.status == "pass"}
    assert passed == {"3", "4, 5", "4.1", "4.2", "4.4", "4.5", "4.6", "10", "9", "11", "4.7"}
    assert [c.status for c in [*scheduled, *eboard]] == ["pass"] * 7
    assert [(c.section, c.detail) for c in everything if c.status == "skip"] == [
        ("4.5", "not an e-board"),
        (
            "11",
            "needs an approved bulletin with audio (--bulletin ID): a schedule plays one, "
            "and approving one takes a second person",
        ),
        (
            "11",
            "needs a way to take the device off the network (--cut-link): through the "
            "API nothing keeps the command that fires an item from reaching it",
        ),
        ("11", "no older schedule of its own heard: it follows the schedule checks"),
        ("4.7", "no image given (--firmware VERSION: uploaded, approved, its model)"),
    ]

    device = fleet.devices[DEVICE]
    assert device.spec.areas == ("70", "689", "25216"), "moved to 25231 and back"
    assert device.reboots == 1, "its areas kept across the reboot"
    assert device.stages_heard == 1, "the 4.2 check's clip fetched at its staging"
    assert device.rejected and any(r.startswith("unsigned") for r in device.rejected)
    assert sum(device.stream_bytes.values()) > 0, "relayed: audio really came"
    away = fleet.devices[SCHEDULED]
    assert sum(away.local_plays.values()) == 1, "once from storage, with its link down"
    board = fleet.devices[EBOARD]
    assert board.firmware == image
    [shown] = [d for d in board.shown if d.image is not None]
    assert shown.body in next(c.detail for c in eboard if c.section == "4.5")


async def test_a_device_that_ignores_its_schedule_fails_section_11(
    stack: Stack, fleet_factory: Callable[..., Fleet], database_url: str, tone_mp3: Path
) -> None:
    fleet = await _fleet(
        stack, fleet_factory, database_url, (SCHEDULED,), faults=Faults(ignore_schedules=True)
    )
    kit = _kit(
        stack, SCHEDULED, only=frozenset({"11"}), bulletin_id=await _bulletin(stack, tone_mp3)
    )
    kit.timeout_s = 2  # what a conforming device does at once
    untrusted, held, from_storage, replayed = checks = await _run(kit)
    print(report(checks))
    assert untrusted.status == "pass", "it takes no document at all"
    assert held.failed and "its heartbeat confirming schedule version" in held.detail
    assert from_storage.status == "skip" and "--cut-link" in from_storage.detail
    assert replayed.failed and "its heartbeat confirming schedule version" in replayed.detail
    assert not fleet.devices[SCHEDULED].schedule.items
