"""One registered cluster sends values outside every field's bounds: each message is refused
and counted on its own, and every other cluster stays online with its heartbeats applied
(issue 20: one heartbeat with an integer past 64 bits failed its batch forever, and three
heartbeat intervals later the API saw 0 of 60 clusters online)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.broker import Broker
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient

HOSTILE = "25216-01"
BIG = 2**64 + 1
NOW = "2026-12-04T02:00:00Z"
HEARTBEAT_FIELDS: dict[str, list[Any]] = {
    "seq": [BIG, -1, 1.5],
    "volume": [BIG, 101, -1],
    "rssi": [BIG, 9223372036854775808, -(2**63) - 1, 5],
    "link_quality": [1000],
    "supply_v": ["NaN", "Infinity", "-Infinity", 1e308, -5],
    "amp_temp_c": ["NaN", 1e300],
    "speakers": [BIG, 65],
    "speaker_faults": [[BIG], [0], list(range(1, 100)), "1"],
    "uptime_s": [BIG, -5],
    "schedule_version": [BIG, -1],
    "lat": [91, "NaN"],
    "lon": [-181],
    "fw": ["x" * 250_000, "1.0\u0000"],
    "playing": ["p" * 5000],
    "at": ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00Z", "2026-12-04T02:00:00"],
}


def _raw(fields: dict[str, Any]) -> bytes:
    """JSON as a faulty firmware writes it, NaN and Infinity included."""
    text = json.dumps({"v": 1, "cluster": HOSTILE, "at": NOW, **fields})
    for word in ("NaN", "Infinity", "-Infinity"):
        text = text.replace(f'"{word}"', word)
    return text.encode()


async def test_a_cluster_sending_every_value_out_of_bounds_blinds_nothing(
    stack: Stack, broker: Broker, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    province = await small_province(stack)
    honest = [s for s in province.online() if s.code != HOSTILE]
    fleet = fleet_factory(honest, time_compression=20)
    await fleet.start()
    hostile = LiteClient("hostile", lambda _t, _p: None)
    await hostile.connect(broker.host, broker.port)
    hostile.publish(
        protocol.status_topic(HOSTILE), protocol.Status(cluster=HOSTILE, online=True).to_json()
    )
    before = dict(stack.runtime.stats.counts)
    sent = 0
    for field, values in HEARTBEAT_FIELDS.items():
        for value in values:
            hostile.publish(protocol.heartbeat_topic(HOSTILE), _raw({field: value}), qos=1)
            sent += 1
    for bad_ack in (
        {"cmd": "c" * 5000, "broadcast": "b", "stage": "played"},
        {"cmd": "c", "broadcast": "b", "stage": "played", "reason": "r" * 250_000},
        {"cmd": "c\u0000", "broadcast": "b", "stage": "played"},
        {"cmd": "c", "broadcast": "b", "stage": "played", "at": "10000-01-01T00:00:00Z"},
    ):
        hostile.publish(protocol.ack_topic(HOSTILE), _raw(bad_ack), qos=1)
        sent += 1

    # Each refused and counted on its own (none of them reached a batch's write).
    def refused(now: dict[str, int]) -> int:
        return sum(now.get(k, 0) - before.get(k, 0) for k in ("malformed", "unapplied"))

    await eventually(
        lambda: _counts(stack), lambda now: refused(now) >= sent, what="every message refused"
    )
    assert stack.runtime.link is not None and stack.runtime.link.set_aside == 0
    # The honest clusters: still online, their heartbeats applied now.
    for spec in honest:
        device = fleet.devices[spec.code]
        device.condition.supply_v = 180.5
        assert device.heartbeat_now()
    for spec in honest:
        health = await eventually(
            lambda code=spec.code: _health(stack, code),
            lambda h: h["online"] and (h["telemetry"] or {}).get("supply_v") == 180.5,
            what=f"{spec.code}'s heartbeat applied",
        )
        assert health["online"]
    # And the fleet answers an emergency as ever.
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, media_sha256=media["sha256"])
    emergency = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ", "areas": ["70"], "bulletin_id": bulletin["id"]},
    )
    await stack.wait_broadcast(emergency.json()["id"], lambda b: counts(b, "played") == len(honest))
    assert stack.runtime.link.backlog == 0
    hostile.drop()


async def _counts(stack: Stack) -> dict[str, int]:
    return dict(stack.runtime.stats.counts)


async def _health(stack: Stack, code: str) -> dict[str, Any]:
    response = await stack.client.get(f"/api/v1/clusters/{code}/health")
    data: dict[str, Any] = response.json()
    return {"online": data["link"]["online"] if "link" in data else data.get("online"), **data}
