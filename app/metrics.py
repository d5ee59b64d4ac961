"""Prometheus metrics at `/metrics` (text exposition format 0.0.4).

Three kinds of figure, each read where it is cheapest and truest:
- **counted in this process** as things happen: device messages by kind (accepted and
  refused), delivery transitions applied from acknowledgements, the request-to-first-
  confirmation latency histogram, MQTT reconnects, HTTP requests by route and status;
- **read from the database at scrape time** (so they are right whichever replica did the
  work): clusters online and offline, and the deliveries of the broadcasts still valid,
  by state and class. These are cached for `CACHE_S` so a scrape storm costs one query;
- **the process's own state**: MQTT connected, job leadership, ingest backlogs.

With several API replicas each exposes its own counters (sum them) and the same
database figures (take `max`). The scheduler process serves no HTTP and has no metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.runtime import Runtime
from broadcast.models import Broadcast, Delivery
from broadcast.states import BroadcastStatus
from core.counters import Histogram, HttpStats
from core.database import session_scope
from devices.models import Cluster
from web.deps import get_runtime

router = APIRouter(include_in_schema=False)
CACHE_S = 5.0
DELIVERY_PREFIX = "delivery_"


@dataclass
class _DatabaseFigures:
    at: float = float("-inf")
    clusters: dict[bool, int] = field(default_factory=dict)
    deliveries: list[tuple[str, str, int]] = field(default_factory=list)


async def _database_figures(runtime: Runtime) -> _DatabaseFigures:
    cached = runtime.metrics_cache
    if isinstance(cached, _DatabaseFigures) and time.monotonic() - cached.at < CACHE_S:
        return cached
    now = runtime.clock.now()
    async with session_scope(runtime.sessions) as session:
        online = await session.execute(
            select(Cluster.online, func.count()).group_by(Cluster.online)
        )
        clusters = {bool(state): int(n) for state, n in online}
        deliveries = await session.execute(
            select(Delivery.state, Broadcast.cls, func.count())
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.expires_at > now, Broadcast.status == BroadcastStatus.ACTIVE)
            .group_by(Delivery.state, Broadcast.cls)
        )
        figures = _DatabaseFigures(
            time.monotonic(), clusters, [(state, cls, int(n)) for state, cls, n in deliveries]
        )
    runtime.metrics_cache = figures
    return figures


def _histogram(name: str, doc: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        name, doc, buckets=histogram.cumulative(), sum_value=histogram.total
    )


@dataclass(eq=False)  # the registry keeps collectors in a dict: hashed by identity
class _Snapshot(Collector):
    """The figures of one scrape, gathered beforehand (the database part is async)."""

    runtime: Runtime
    database: _DatabaseFigures
    http: HttpStats

    def collect(self) -> Iterator[Metric]:
        runtime, stats = self.runtime, self.runtime.stats
        messages = CounterMetricFamily(
            "broadcast_ingest_messages",
            "Device messages by kind: received, accepted and refused (malformed, unknown "
            "device, ...), as at /api/v1/ingest",
            labels=["kind"],
        )
        transitions = CounterMetricFamily(
            "broadcast_delivery_transitions",
            "Delivery state changes applied from acknowledgements, by new state",
            labels=["state"],
        )
        for kind, n in sorted(stats.counts.items()):
            if kind.startswith(DELIVERY_PREFIX):
                transitions.add_metric([kind.removeprefix(DELIVERY_PREFIX)], n)
            else:
                messages.add_metric([kind], n)
        yield messages
        yield transitions
        yield _histogram(
            "broadcast_confirmation_latency_seconds",
            "From a broadcast's request to each cluster's first confirmation",
            stats.confirm_latency,
        )
        yield CounterMetricFamily(
            "broadcast_sign_in_alarms",
            "Names that reached the wrong-password limit from one address: someone guessing",
            value=runtime.http.sign_in_alarms,
        )
        mqtt = runtime.mqtt
        yield CounterMetricFamily(
            "broadcast_mqtt_reconnects",
            "Times the control plane's MQTT client connected again after losing the broker",
            value=mqtt.reconnects if mqtt else 0,
        )
        yield GaugeMetricFamily(
            "broadcast_mqtt_connected",
            "1 while the MQTT client is connected and subscribed",
            value=1 if mqtt and mqtt.connected else 0,
        )
        yield GaugeMetricFamily(
            "broadcast_job_leader",
            "1 while this process holds the job leadership (re-sends, expiry, schedules)",
            value=1 if runtime.jobs and runtime.jobs.leading else 0,
        )
        backlog = GaugeMetricFamily(
            "broadcast_ingest_backlog", "Device messages waiting for a batch", labels=["queue"]
        )
        backlog.add_metric(["acks"], runtime.acks.backlog if runtime.acks else 0)
        backlog.add_metric(["link"], runtime.link.backlog if runtime.link else 0)
        yield backlog
        clusters = GaugeMetricFamily(
            "broadcast_clusters", "Registered clusters and e-boards by link state", labels=["state"]
        )
        clusters.add_metric(["online"], self.database.clusters.get(True, 0))
        clusters.add_metric(["offline"], self.database.clusters.get(False, 0))
        yield clusters
        deliveries = GaugeMetricFamily(
            "broadcast_deliveries",
            "Deliveries of the broadcasts still valid, by state and class",
            labels=["state", "class"],
        )
        for state, cls, n in self.database.deliveries:
            deliveries.add_metric([state, cls], n)
        yield deliveries
        requests = CounterMetricFamily(
            "broadcast_http_requests",
            "HTTP requests by method, route and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(self.http.requests.items()):
            requests.add_metric([method, route, status], n)
        yield requests
        yield _histogram(
            "broadcast_http_request_duration_seconds", "HTTP answer times", self.http.seconds
        )


class RequestCounter:
    """ASGI middleware: one count and one duration per answered request, timed to the
    start of the answer (a live event stream counts its time to first byte)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None) or "unmatched"  # never ids
                runtime = getattr(scope["app"].state, "runtime", None)
                if runtime is not None and route != "/metrics":
                    runtime.http.record(
                        scope["method"], route, message["status"], time.perf_counter() - started
                    )
            await send(message)

        await self.app(scope, receive, timed)


# The composition root's own routes see the whole runtime.
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    """For Prometheus. Unauthenticated like /healthz: keep it on the internal network
    (deploy/nginx.conf does not pass it through)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(runtime, await _database_figures(runtime), runtime.http))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
