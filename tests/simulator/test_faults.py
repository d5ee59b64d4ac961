"""The fleet's injected faults: slow acknowledgements and links that drop mid-broadcast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from simulator.device import Faults
from simulator.fleet import Fleet
from tests.broadcast.helpers import seed_province, send, upload
from tests.support import Stack, counts

DISTRICT = "690"


async def test_slow_acks_and_dropped_links_still_end_played_once(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = [s for s in await seed_province(stack) if DISTRICT in s.areas]
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
