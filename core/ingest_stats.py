"""Counters for what arrived from devices and what was refused, shown at /api/v1/ingest."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

from core.counters import Histogram

log = logging.getLogger("ingest")

RECENT_REJECTS = 50  # enough for a technician to see the pattern, small enough to keep
# A misconfigured fleet can send thousands of bad messages a second; log the first few of
# each kind per window and then one line saying how many were not logged.
LOG_WINDOW_S = 60.0
LOGS_PER_WINDOW = 10


@dataclass
class Reject:
    at: datetime
    topic: str
    reason: str
    payload: str


@dataclass
class _LogBudget:
    window_start: float = 0.0
    logged: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class AuditNote:
    """Something a device (or whoever holds its credentials) tried that was refused, for
    the audit log; written by the ingest transaction that saw it."""

    at: datetime
    actor: str  # the cluster named by the topic, or the topic itself
    action: str
    target: str
    reason: str


@dataclass
class IngestStats:
    counts: Counter[str] = field(default_factory=Counter)
    confirm_latency: Histogram = field(default_factory=Histogram)
    recent: deque[Reject] = field(default_factory=lambda: deque(maxlen=RECENT_REJECTS))
    _budgets: dict[str, _LogBudget] = field(default_factory=dict)
    # Bounded like the log lines: a flood of junk is one line a window, not a full disk.
    audit_queue: list[AuditNote] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def reject(self, kind: str, *, at: datetime, topic: str, reason: str, payload: bytes) -> None:
        """Log, count and remember a message that was refused; never raises."""
        self.counts[kind] += 1
        text = payload[:200].decode("utf-8", errors="replace")
        self.recent.append(Reject(at=at, topic=topic, reason=reason, payload=text))
        budget = self._budgets.setdefault(kind, _LogBudget())
        now = time.monotonic()
        if now - budget.window_start > LOG_WINDOW_S:
            if budget.suppressed:
                log.warning(
                    "%d more %s messages rejected without a log line", budget.suppressed, kind
                )
            budget.window_start, budget.logged, budget.suppressed = now, 0, 0
        if budget.logged < LOGS_PER_WINDOW:
            budget.logged += 1
            log.warning("rejected %s on %s: %s", kind, topic, reason)
            actor = topic.split("/")[3] if topic.count("/") >= 4 else topic
            self.audit_queue.append(AuditNote(at, actor, f"mqtt {kind}", topic, reason))
        else:
            budget.suppressed += 1

    def take_audit(self) -> list[AuditNote]:
        notes, self.audit_queue = self.audit_queue, []
        return notes
