"""The words a schedule and each of its slots are recorded with (stored as these strings)."""

from __future__ import annotations

from enum import StrEnum


class ScheduleStatus(StrEnum):
    ACTIVE = "active"  # fires its slots
    PAUSED = "paused"  # kept, fires nothing until resumed
    ENDED = "ended"  # no slot left, or ended by a person: never fires again


class SlotOutcome(StrEnum):
    """What became of one slot (ScheduleFiring.outcome)."""

    ON_TIME = "on_time"
    LATE = "late"  # played, more than LATE_AFTER_S after the slot
    MISSED = "missed"  # reached beyond the grace window: recorded, not played
    SKIPPED = "skipped"  # could not air (bulletin withdrawn, targets removed...)
