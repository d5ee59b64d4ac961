"""A message as it arrived on a device topic, and the checks every one of them passes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.ingest_stats import IngestStats
from wire.protocol import ProtocolError


class _FromCluster(Protocol):
    @property
    def cluster(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    topic_cluster: str  # the cluster code in the topic: what the broker vouched for
    payload: bytes
    received_at: datetime  # the control plane's clock, when the message arrived

    def refuse(self, stats: IngestStats, kind: str, reason: str) -> None:
        stats.reject(
            kind, at=self.received_at, topic=self.topic, reason=reason, payload=self.payload
        )


def accept[M: _FromCluster](
    message: Inbound, parse: Callable[[bytes], M], stats: IngestStats
) -> M | None:
    """The parsed payload, or None after refusing it (logged, counted): malformed, or a
    cluster speaking for another than the one its topic names."""
    try:
        parsed = parse(message.payload)
    except ProtocolError as exc:
        message.refuse(stats, "malformed", str(exc))
        return None
    if parsed.cluster != message.topic_cluster:
        message.refuse(stats, "topic_mismatch", f"payload names cluster {parsed.cluster!r}")
        return None
    return parsed
