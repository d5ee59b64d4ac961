"""Sending while the broker is down: accepted and queued, delivered when it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.main import create_app
from core.settings import Settings
from devstack.broker import Broker
from simulator.fleet import Fleet
from tests.broadcast.helpers import upload
from tests.factories import small_province
from tests.support import Stack, counts, start_stack


@pytest.fixture
async def own_broker() -> AsyncIterator[Broker]:
    broker = Broker().start()
    yield broker
    broker.close()


async def test_a_broadcast_sent_during_a_broker_outage_is_delivered_after_it(
    settings_factory: Callable[..., Settings], own_broker: Broker, tone_mp3: Path
) -> None:
    settings = settings_factory(mqtt_port=own_broker.port)
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    stack: Stack = await start_stack(create_app(settings), settings, port)
    fleet = Fleet([], host=own_broker.host, port=own_broker.port)
    try:
        specs = (await small_province(stack)).of("25216")
        fleet = Fleet(specs, host=own_broker.host, port=own_broker.port, seed=3)
        await fleet.start()
        media = await upload(stack, tone_mp3)

        own_broker.stop()
        response = await stack.client.post(
            "/api/v1/broadcasts",
            json={"title": "Bão số 3", "areas": ["25216"], "media_sha256": media["sha256"]},
        )
        assert response.status_code == 201, response.text
        sent = response.json()
        assert sent["published"] is False
        assert sent["counts"] == {"queued": len(specs)}

        own_broker.start()  # same port: devices and the control plane reconnect
        done = await stack.wait_broadcast(
            sent["id"],
            lambda b: counts(b, "played") == len(specs),
            timeout=45,
            what="delivery after the broker returned",
        )
        assert done["confirmed"] == len(specs)
        assert all(n == 1 for n in fleet.play_counts(sent["id"]).values())
    finally:
        await fleet.close()
        await stack.stop()


async def test_a_cancel_during_a_broker_outage_reaches_every_cluster_after_it(
    settings_factory: Callable[..., Settings], own_broker: Broker, long_mp3: Path
) -> None:
    settings = settings_factory(mqtt_port=own_broker.port)
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    stack: Stack = await start_stack(create_app(settings), settings, port)
    fleet = Fleet([], host=own_broker.host, port=own_broker.port)
    try:
        specs = (await small_province(stack)).of("25216")
        fleet = Fleet(specs, host=own_broker.host, port=own_broker.port, seed=4)
        await fleet.start()
        media = await upload(stack, long_mp3)
        sent = (
            await stack.client.post(
                "/api/v1/broadcasts",
                json={"title": "Lũ", "areas": ["25216"], "media_sha256": media["sha256"]},
            )
        ).json()
        await stack.wait_broadcast(sent["id"], lambda b: counts(b, "playing") == len(specs))

        own_broker.stop()
        response = await stack.client.post(f"/api/v1/broadcasts/{sent['id']}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["published"] is False
        assert response.json()["counts"] == {"canceled": len(specs)}

        own_broker.start()
        await stack.wait_broadcast(
            sent["id"],
            lambda b: b["stops_confirmed"] == len(specs),
            timeout=45,
            what="every cluster to confirm the stop after the outage",
        )
        assert sum(fleet.play_counts(sent["id"]).values()) == 0
    finally:
        await fleet.close()
        await stack.stop()
