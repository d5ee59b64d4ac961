"""The fleet's injected faults: slow acknowledgements and links that drop mid-broadcast;
what a dropped link's session keeps, and what a cluster that leaves does not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from devstack.broker import Broker
from simulator.device import SimulatedCluster
from simulator.fleet import Fleet
from simulator.spec import DeviceSpec, Faults
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient

DISTRICT = "689"  # ten clusters in two communes: three of them flap


async def test_slow_acks_and_dropped_links_still_end_played_once(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack, clusters_per_commune=4)).of(DISTRICT)
    fleet = fleet_factory(specs, faults=Faults(latency_s=0.5))
    await fleet.start()
    media = await upload(stack, tone_mp3)
    sent = await send(stack, areas=[DISTRICT], media_sha256=media["sha256"])

    flapping, _ = fleet.split(0.3, seed=5)
    for code in flapping:  # their 4G links die; the broker sends their Last Will
        fleet.devices[code].drop_link()
    await asyncio.gather(*(fleet.devices[c].online.wait() for c in flapping))

    done = await stack.wait_broadcast(
        sent["id"], lambda b: counts(b, "played") == len(specs), timeout=60
    )
    assert done["confirmed"] == len(specs)
    assert all(n == 1 for n in fleet.play_counts(sent["id"]).values())
    ingest = (await stack.client.get("/api/v1/ingest")).json()["counts"]
    assert ingest["status_received"] >= len(specs) + len(flapping), "Wills and rebirths seen"


async def _publish(broker: Broker, topic: str, payload: bytes) -> None:
    client = LiteClient("session-test-writer", lambda _t, _p: None)
    await client.connect(broker.host, broker.port)
    acknowledged = client.publish(topic, payload)
    assert acknowledged is not None
    await asyncio.wait_for(acknowledged, 10)  # the broker has it
    await client.disconnect()


async def _sessions_message(device: SimulatedCluster) -> list[str]:
    return [r for r in device.rejected if "malformed" in r]


async def test_what_is_published_while_a_link_is_down_waits_in_the_clusters_session(
    broker: Broker, fleet_factory: Callable[..., Fleet]
) -> None:
    spec = DeviceSpec(code="99901-01", kind="speaker_cluster", areas=("99", "999", "99901"))
    fleet = fleet_factory([spec])
    await fleet.start()
    device = fleet.devices[spec.code]
    device.go_offline(1.0)  # its 4G link dies; it is back in a second or so
    assert not device.client.connected
    # Published while it is away, by no control plane (so never re-sent): only the
    # broker's copy, kept in the cluster's session, can reach it.
    await _publish(broker, protocol.cluster_command_topic(spec.code), b"not a command")
    assert not await _sessions_message(device)
    await eventually(lambda: _sessions_message(device), bool, what="the message from the session")
    assert device.client.connected


async def _session_kept(broker: Broker, code: str) -> bool:
    """Whether the broker still holds a session for `code` (asked by resuming it)."""
    probe = LiteClient(code, lambda _t, _p: None)
    await probe.connect(
        broker.host,
        broker.port,
        clean_start=False,
        session_expiry_s=protocol.DEVICE_SESSION_EXPIRY_S,
    )
    kept = probe.session_present
    await probe.disconnect()  # and ends it
    return kept


async def test_a_cluster_that_shuts_down_ends_its_session_one_that_drops_keeps_it(
    broker: Broker, fleet_factory: Callable[..., Fleet]
) -> None:
    """Leaving is not a dropped link: the broker keeps nothing for a cluster that said
    goodbye (it would queue that cluster's area commands for ten minutes for nobody)."""
    leaving, dropping = (
        DeviceSpec(code=f"99901-0{n}", kind="speaker_cluster", areas=("99", "999", "99901"))
        for n in (2, 3)
    )
    fleet = fleet_factory([leaving, dropping])
    await fleet.start()
    await fleet.devices[leaving.code].stop()
    await fleet.devices[dropping.code].stop(clean=False)
    assert not await _session_kept(broker, leaving.code)
    assert await _session_kept(broker, dropping.code)
