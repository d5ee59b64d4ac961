"""The control plane as real processes: killed with SIGKILL mid-alert and restarted; two
replicas on one PostgreSQL and one broker, sharing the acknowledgements through an MQTT
shared subscription, one of them killed mid-alert. Nothing is lost either way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.database import create_engine
from core.settings import Settings
from simulator.fleet import Fleet
from simulator.spec import DeviceSpec, Faults
from tests.factories import small_province_via
from tests.faults.helpers import assert_nothing_lost
from tests.processes import ApiProcess
from tests.support import eventually, reserve_port

DISTRICT = "689"  # of the small province: two communes, twelve clusters


@pytest.fixture
async def apis(tmp_path: Path) -> AsyncIterator[Callable[[Settings], ApiProcess]]:
    started: list[ApiProcess] = []

    def start(settings: Settings, port: int | None = None) -> ApiProcess:
        number = len(started)
        api = ApiProcess(settings, port or reserve_port(), tmp_path / f"api-{number}.log")
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


async def _district(url: str) -> list[DeviceSpec]:
    """A small province registered through the running API; the district's clusters,
    enough that one alert's acknowledgements spread over the faults' delays."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        province = await small_province_via(client, clusters_per_commune=5)
    return province.of(DISTRICT)


async def _send(client: httpx.AsyncClient, media: str) -> str:
    response = await client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ khẩn cấp", "areas": [DISTRICT], "media_sha256": media},
    )
    assert response.status_code == 201, response.text
    broadcast_id: str = response.json()["id"]
    return broadcast_id


async def _state(client: httpx.AsyncClient, broadcast_id: str) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/broadcasts/{broadcast_id}", params={"unconfirmed_limit": 0}
    )
    data: dict[str, Any] = response.json()
    return data


async def _upload(client: httpx.AsyncClient, clip: Path) -> str:
    with clip.open("rb") as f:
        response = await client.post("/api/v1/media", files={"file": (clip.name, f)})
    assert response.status_code == 201, response.text
    sha: str = response.json()["sha256"]
    return sha


def _played(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda b: b["counts"].get("played", 0) == n


async def test_the_api_killed_mid_alert_and_restarted_loses_nothing(
    settings_factory: Callable[..., Settings],
    apis: Callable[..., ApiProcess],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
) -> None:
    settings = settings_factory()
    api = await apis(settings).ready()
    specs = await _district(api.url)
    fleet = fleet_factory(specs, faults=Faults(latency_s=2.0), time_compression=10)
    await fleet.start()
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        broadcast_id = await _send(client, await _upload(client, tone_mp3))
        midway = await eventually(
            lambda: _state(client, broadcast_id), lambda b: b["confirmed"] > 0, what="a first ack"
        )
    api.kill()  # mid-alert: acks in flight, a batch perhaps unwritten, re-sends pending
    assert midway["confirmed"] < len(specs)
    again = await apis(settings, api.port).ready()
    async with httpx.AsyncClient(base_url=again.url, timeout=30) as client:
        await eventually(
            lambda: _state(client, broadcast_id),
            _played(len(specs)),
            timeout=90,
            what="every cluster played, after the restart",
        )
    engine = create_engine(settings.database_url)
    try:
        await assert_nothing_lost(
            engine, broadcast_id, fleet, [s.code for s in specs], until=datetime.now(UTC)
        )
    finally:
        await engine.dispose()


async def test_two_replicas_share_the_acks_and_one_killed_mid_alert_loses_nothing(
    settings_factory: Callable[..., Settings],
    apis: Callable[..., ApiProcess],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL (SQLite is one process's file)")
    settings = settings_factory()
    replicas = [await apis(settings).ready(), await apis(settings).ready()]
    specs = await _district(replicas[0].url)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    clients = [httpx.AsyncClient(base_url=r.url, timeout=30) for r in replicas]
    try:
        media = await _upload(clients[0], tone_mp3)
        # Both up: each acknowledgement is read by exactly one of them.
        first = await _send(clients[0], media)
        await eventually(lambda: _state(clients[1], first), _played(len(specs)), timeout=60)

        async def read_and_sent() -> tuple[list[int], int]:
            """What each replica read, and what the fleet sent (re-sends are answered
            too, so both are taken at the same moment)."""
            read = [
                (await c.get("/api/v1/ingest")).json()["counts"].get("acks_received", 0)
                for c in clients
            ]
            return read, sum(d.acks_sent for d in fleet.devices.values())

        shares, _ = await eventually(
            read_and_sent, lambda r: sum(r[0]) == r[1], what="every ack read once"
        )
        assert all(n > 0 for n in shares), f"both replicas took a share: {shares}"

        # The alert through the other replica; then its leader (re-sends, expiry) killed.
        fleet.env.faults = Faults(latency_s=2.0)
        alert = await _send(clients[1], media)
        await eventually(lambda: _state(clients[0], alert), lambda b: b["confirmed"] > 0)
        leader = next(r for r in replicas if r.says("acquired scheduler leadership"))
        # Monitoring tells which one leads: exactly that one says so in its metrics.
        assert [await _leads(c) for c in clients] == [r is leader for r in replicas]
        survivor = clients[1 - replicas.index(leader)]
        leader.kill()
        await eventually(
            lambda: _state(survivor, alert),
            _played(len(specs)),
            timeout=90,
            what="every cluster played, through the survivor",
        )
        assert await eventually(lambda: _leads(survivor), bool, what="the survivor leading")
    finally:
        for client in clients:
            await client.aclose()
    engine = create_engine(settings.database_url)
    try:
        for broadcast_id in (first, alert):
            await assert_nothing_lost(
                engine, broadcast_id, fleet, [s.code for s in specs], until=datetime.now(UTC)
            )
    finally:
        await engine.dispose()


async def _leads(client: httpx.AsyncClient) -> bool:
    """What the replica's /metrics say of its job leadership."""
    metrics = (await client.get("/metrics")).text
    [line] = [x for x in metrics.splitlines() if x.startswith("broadcast_job_leader ")]
    return line.split()[1] == "1.0"
