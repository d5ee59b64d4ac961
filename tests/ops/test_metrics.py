"""Prometheus metrics: what a province's monitoring reads, checked against what really
happened (a broadcast to one commune's clusters, a malformed device message, requests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from simulator.fleet import Fleet
from tests.broadcast.helpers import a_commune_hears_an_emergency, send, upload
from tests.factories import small_province
from tests.support import Stack, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient

COMMUNE = "25216"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(stack: Stack) -> Samples:
    response = await stack.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_match_a_broadcast_the_fleet_and_the_requests(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    heard = await a_commune_hears_an_emergency(stack, fleet_factory, tone_mp3, COMMUNE)
    everyone, specs = heard.everyone, heard.specs

    rogue = LiteClient("rogue", lambda _t, _p: None)
    await rogue.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    future = rogue.publish(protocol.ack_topic(specs[0].code), b"{not json")
    assert future is not None
    await future
    await rogue.disconnect()

    n = len(specs)
    samples = await eventually(
        lambda: _scrape(stack),
        lambda s: (
            _value(s, "broadcast_ingest_messages_total", kind="malformed") == 1
            and _value(s, "broadcast_clusters", state="online") == n
        ),
        what="the malformed message and the fleet in the metrics",
    )
    # Every cluster confirmed once: one latency observation each, all within the
    # histogram's buckets and with a plausible sum.
    assert _value(samples, "broadcast_confirmation_latency_seconds_count") == n
    assert _value(samples, "broadcast_confirmation_latency_seconds_bucket", le="+Inf") == n
    assert 0 < _value(samples, "broadcast_confirmation_latency_seconds_sum") < n * 60
    assert _value(samples, "broadcast_delivery_transitions_total", state="played") == n
    # From the database: the fleet's link states and the still-valid broadcast's deliveries.
    assert _value(samples, "broadcast_clusters", state="offline") == len(everyone) - n
    assert _value(samples, "broadcast_deliveries", state="played", **{"class": "emergency"}) == n
    assert _value(samples, "broadcast_mqtt_connected") == 1
    assert _value(samples, "broadcast_mqtt_reconnects_total") == 0
    # Requests by route template (never by id), with their status.
    assert (
        _value(
            samples,
            "broadcast_http_requests_total",
            method="POST",
            route="/api/v1/broadcasts",
            status="201",
        )
        == 1
    )
    polled = _value(
        samples,
        "broadcast_http_requests_total",
        method="GET",
        route="/api/v1/broadcasts/{broadcast_id}",
        status="200",
    )
    assert polled >= 1
    assert not any("/metrics" in dict(labels).get("route", "") for _, labels in samples)


async def test_a_cancelled_broadcast_leaves_the_live_delivery_figures(
    stack: Stack, tone_mp3: Path
) -> None:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    before = await _scrape(stack)
    waiting = sum(v for (name, labels), v in before.items() if name == "broadcast_deliveries")
    assert waiting > 0  # nobody online: every delivery still open
    assert (await stack.client.post(f"/api/v1/broadcasts/{sent['id']}/cancel")).is_success
    stack.runtime.metrics_cache = None  # the next scrape reads the database again
    after = await _scrape(stack)
    assert [k for k in after if k[0] == "broadcast_deliveries"] == []
