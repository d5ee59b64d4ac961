"""Counters a process keeps as things happen, read by the metrics endpoint
(app/metrics.py) without depending on it."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Seconds from a broadcast's request to a cluster's first confirmation: the figure a
# duty officer cares about (under a second for a province is the target).
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


@dataclass
class Histogram:
    """Counts per upper bound (the last slot is +Inf), a sum and a count: what the
    Prometheus exposition needs, kept here so the ingest does not depend on it."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or under it), ending with +Inf."""
        running, out = 0, []
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class HttpStats:
    """Requests by (method, route template, status) and their durations: kept by the
    middleware; the route template (`/api/v1/broadcasts/{broadcast_id}`) keeps the
    number of series bounded whatever the ids."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    seconds: Histogram = field(default_factory=lambda: Histogram(bounds=HTTP_BUCKETS_S))
    sign_in_alarms: int = 0  # names that reached the wrong-password limit from one address

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        self.seconds.observe(seconds)
