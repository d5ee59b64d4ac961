"""Cancel reaches clusters mid-playback; expiry closes what never arrived."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulator.fleet import Fleet
from tests.broadcast.helpers import event_counts, send, upload
from tests.factories import small_province
from tests.support import Stack, counts

DISTRICT = "689"  # two communes of the small province


async def test_cancel_stops_clusters_mid_playback(
    stack: Stack, fleet_factory: Callable[..., Fleet], long_mp3: Path
) -> None:
    specs = (await small_province(stack, clusters_per_commune=2)).of(DISTRICT)
    fleet = fleet_factory(specs)
    await fleet.start()
    media = await upload(stack, long_mp3)
    sent = await send(stack, areas=[DISTRICT], media_sha256=media["sha256"])
    await stack.wait_broadcast(
        sent["id"], lambda b: counts(b, "playing") == len(specs), what="all PLAYING"
    )

    response = await stack.client.post(f"/api/v1/broadcasts/{sent['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    assert response.json()["counts"] == {"canceled": len(specs)}

    done = await stack.wait_broadcast(
        sent["id"], lambda b: b["stops_confirmed"] == len(specs), what="every stop confirmed"
    )
    assert done["counts"] == {"canceled": len(specs)}
    assert fleet.count(lambda d: d._current is not None) == 0, "a cluster is still playing"
    assert sum(fleet.play_counts(sent["id"]).values()) == 0, "a cluster finished the bulletin"
    assert (await event_counts(stack, sent["id"]))["canceled"] == len(specs)

    again = await stack.client.post(f"/api/v1/broadcasts/{sent['id']}/cancel")
    assert again.status_code == 409


async def test_a_cluster_offline_during_the_cancel_is_stopped_when_it_returns(
    stack: Stack, fleet_factory: Callable[..., Fleet], long_mp3: Path
) -> None:
    specs = (await small_province(stack)).of("25216")  # one commune, two clusters
    fleet = fleet_factory(specs)
    await fleet.start()
    media = await upload(stack, long_mp3)
    sent = await send(stack, areas=["25216"], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "playing") == len(specs))

    away = specs[0].code
    await fleet.stop([away])  # its link drops while it plays
    await stack.client.post(f"/api/v1/broadcasts/{sent['id']}/cancel")
    await stack.wait_broadcast(sent["id"], lambda b: b["stops_confirmed"] == len(specs) - 1)
    await fleet.start([away])
    await stack.wait_broadcast(
        sent["id"], lambda b: b["stops_confirmed"] == len(specs), what="the returning stop"
    )


async def test_an_expired_broadcast_cannot_be_sent(stack: Stack) -> None:
    await small_province(stack)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await stack.client.post(
        "/api/v1/broadcasts",
        json={
            "title": "x",
            "areas": ["70"],
            "stream_url": "http://127.0.0.1/s",
            "expires_at": past,
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "expires_at"


async def test_expiry_closes_deliveries_that_never_arrived(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack)).of("25216")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    sent = await send(
        stack, areas=["25216"], stream_url="http://127.0.0.1:9/radio", expires_at=soon
    )
    done = await stack.wait_broadcast(
        sent["id"], lambda b: b["status"] == "expired", what="the broadcast to expire"
    )
    assert done["counts"] == {"expired": len(specs)}  # nobody was online to receive it
    assert done["unconfirmed_total"] == 0

    fleet = fleet_factory(specs)
    await fleet.start()  # coming back later: nothing is sent, it is no longer valid
    await stack.runtime.drained()
    assert stack.runtime.jobs is not None
    await stack.runtime.jobs.wait_ticks(2)
    assert fleet.count(lambda d: d.play_counts[sent["id"]] > 0) == 0
    after = await stack.broadcast(sent["id"])
    assert after["counts"] == {"expired": len(specs)}
