"""Counters for what arrived from devices and what was refused, shown at /api/v1/ingest."""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

log = logging.getLogger("ingest")

RECENT_REJECTS = 50  # enough for a technician to see the pattern, small enough to keep


@dataclass
class Reject:
    at: datetime
    topic: str
    reason: str
    payload: str


@dataclass
class IngestStats:
    counts: Counter[str] = field(default_factory=Counter)
    recent: deque[Reject] = field(default_factory=lambda: deque(maxlen=RECENT_REJECTS))

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def reject(self, kind: str, *, at: datetime, topic: str, reason: str, payload: bytes) -> None:
        """Log, count and remember a message that was refused; never raises."""
        self.counts[kind] += 1
        text = payload[:200].decode("utf-8", errors="replace")
        self.recent.append(Reject(at=at, topic=topic, reason=reason, payload=text))
        log.warning("rejected %s on %s: %s", kind, topic, reason)
