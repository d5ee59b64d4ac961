"""Refusals of anonymous requests, counted per address and window instead of written one
by one (issue 19): about 390 rows a second of anonymous 401s went into a table that
refuses deletes, each taking the write lock that sending takes. What is kept: one row per
(address, route, status) and window, with how many, the first and the last."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from audit.models import AuditEvent, AuditOutcome
from audit.service import event

TALLY_WINDOW_S = 60.0  # rows are written once a window (and at shutdown)
MAX_KEYS = 10_000  # distinct (address, route, status) kept per window; beyond: one row


@dataclass
class _Count:
    n: int
    first: datetime
    last: datetime
    error: str


@dataclass
class RefusalTally:
    _counts: dict[tuple[str, str, int], _Count] = field(default_factory=dict)
    overflow: int = 0

    def add(self, *, address: str, action: str, status: int, at: datetime, error: str) -> None:
        key = (address, action, status)
        found = self._counts.get(key)
        if found is not None:
            found.n, found.last = found.n + 1, at
        elif len(self._counts) < MAX_KEYS:
            self._counts[key] = _Count(1, at, at, error)
        else:
            self.overflow += 1

    def take(self, now: datetime) -> list[AuditEvent]:
        """The window's rows (and empties the tally)."""
        rows = [
            event(
                at=c.first,
                actor="anonymous",
                action=action,
                outcome=AuditOutcome.DENIED,
                address=address,
                status=status,
                detail={"count": c.n, "last": c.last.isoformat(), "error": c.error[:300]},
            )
            for (address, action, status), c in sorted(self._counts.items())
        ]
        if self.overflow:
            rows.append(
                event(
                    at=now,
                    actor="anonymous",
                    action="(many addresses)",
                    outcome=AuditOutcome.DENIED,
                    detail={"count": self.overflow},
                )
            )
        self._counts, self.overflow = {}, 0
        return rows
