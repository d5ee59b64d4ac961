"""No `played` for silence (issue 19): after an operation switched the amplifier off, a
cluster answered an emergency `played` while nothing could sound. An emergency switches
it back on and says so; anything else with the amplifier off fails with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from broadcast.models import Delivery
from core.database import session_scope
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually

COMMUNE = "25216"


async def test_an_emergency_switches_the_amplifier_on_a_notice_fails(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    province = await small_province(stack)
    [spec] = [s for s in province.online() if COMMUNE in s.areas]
    fleet = fleet_factory([spec], time_compression=20)
    await fleet.start()
    device = fleet.devices[spec.code]
    off = await stack.client.post(
        "/api/v1/operations",
        json={"kind": "amplifier", "params": {"on": False}, "clusters": [spec.code]},
    )
    assert off.status_code == 201, off.text
    await eventually(
        lambda: _telemetry(stack, spec.code), lambda t: t.get("amp_on") is False, what="amp off"
    )
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, media_sha256=media["sha256"])
    notice = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Họp", "class": "normal", "areas": [COMMUNE], "bulletin_id": bulletin["id"]},
    )
    failed = await stack.wait_broadcast(notice.json()["id"], lambda b: counts(b, "failed") == 1)
    assert failed["confirmed"] == 0 and device.play_counts[notice.json()["id"]] == 0
    async with session_scope(stack.runtime.sessions) as session:
        reason = await session.scalar(
            select(Delivery.reason).where(
                Delivery.broadcast_id == notice.json()["id"], Delivery.state == "failed"
            )
        )
    assert reason == "amplifier off"

    emergency = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ", "areas": [COMMUNE], "media_sha256": media["sha256"]},
    )
    await stack.wait_broadcast(emergency.json()["id"], lambda b: counts(b, "played") == 1)
    assert device.condition.amp_on is True and device.play_counts[emergency.json()["id"]] == 1
    await eventually(
        lambda: _telemetry(stack, spec.code), lambda t: t.get("amp_on") is True, what="amp on"
    )


async def _telemetry(stack: Stack, code: str) -> dict[str, Any]:
    data: dict[str, Any] = (await stack.client.get(f"/api/v1/clusters/{code}/health")).json()
    return data.get("telemetry") or {}
