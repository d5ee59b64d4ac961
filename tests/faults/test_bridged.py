"""Past one broker with the broker's own means: clusters on two edge Mosquittos bridged
to the core Mosquitto the control plane uses. A district's emergency reaches clusters on
both edges and every confirmation comes back through the bridges."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.main import create_app
from core.settings import Settings
from devstack.broker import BRIDGE_TOPICS, BrokerTier
from simulator.fleet import Fleet
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.faults.helpers import assert_nothing_lost
from tests.support import counts, eventually, start_stack

DISTRICT = "689"  # six clusters of the small province, three behind each edge


@pytest.fixture
async def tier() -> AsyncIterator[BrokerTier]:
    brokers = BrokerTier(edges=2).start()
    yield brokers
    brokers.close()


async def test_an_emergency_crosses_the_bridges_to_clusters_on_two_edge_brokers(
    settings_factory: Callable[..., Settings], tier: BrokerTier, tone_mp3: Path
) -> None:
    settings = settings_factory(mqtt_port=tier.core.port)
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    stack = await start_stack(create_app(settings), settings, port)
    fleets: list[Fleet] = []
    try:
        specs = (await small_province(stack, clusters_per_commune=2)).of(DISTRICT)
        for k, edge in enumerate(tier.edges):
            fleet = Fleet(
                specs[k :: len(tier.edges)],
                host=edge.host,
                port=edge.port,
                time_compression=10,
                seed=k,
            )
            fleets.append(fleet)
            await fleet.start()

        async def online() -> int:
            page = await stack.client.get(
                "/api/v1/clusters", params={"area": DISTRICT, "online": "true", "limit": 1}
            )
            total: int = page.json()["total"]
            return total

        await eventually(online, lambda n: n == len(specs), what="births through the bridges")
        media = await upload(stack, tone_mp3)
        sent = await send(stack, areas=[DISTRICT], media_sha256=media["sha256"])
        await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(specs))
        for fleet in fleets:
            assert len(fleet) > 0
            await assert_nothing_lost(
                stack.runtime.engine,
                sent["id"],
                fleet,
                list(fleet.devices),
                until=datetime.now(UTC),
            )
    finally:
        for fleet in fleets:
            await fleet.close()
        await stack.stop()


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _lines(path: Path, *prefixes: str) -> list[str]:
    return [
        " ".join(line.split())
        for line in path.read_text().splitlines()
        if line.split() and line.split()[0] in prefixes
    ]


def test_the_deployed_edge_bridges_what_the_tested_edges_bridge_with_the_cores_limits() -> None:
    edge = DEPLOY / "mosquitto.edge.conf"
    # The docker-compose edge (`--profile edges`) is the one tested above, in production
    # clothes: the same topics each way, and the core's limits (a province's acks at
    # once without a silent drop), TLS and accounts.
    assert _lines(edge, "topic") == list(BRIDGE_TOPICS)
    limits = (
        "max_queued_messages",
        "max_queued_bytes",
        "max_inflight_messages",
        "max_inflight_bytes",
        "allow_duplicate_messages",
        "allow_anonymous",
        "password_file",
        "acl_file",
        "persistence",
    )
    assert _lines(edge, *limits) == _lines(DEPLOY / "mosquitto.production.conf", *limits)
