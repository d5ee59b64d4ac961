"""When a schedule plays: RFC 5545 recurrence in the area's local time, out as UTC instants.

Pure module (standard library and dateutil). Schedules are written the way a commune
thinks of them, "06:00 every weekday", in local wall-clock time; they are stored that way
and turned into instants only when expanded, so a zone with daylight saving time keeps
"06:00" at 06:00 on both sides of the change.

Wall-clock times that do not exist or happen twice (daylight saving changes) follow
PEP 495 with fold=0, the same rule as RFC 5545 section 3.3.5:
- a time inside the jump forward (02:30 when clocks go from 02:00 to 03:00) is played
  that much later (03:30): the slot is not lost;
- a time that happens twice (01:30 when clocks go back) is played once, the first time.
Vietnam has no daylight saving time; the rule matters for code that must stay correct
elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

# How far ahead to look for the next slot before concluding there is none (a rule such
# as "every 29 February" or "the fifth Sunday of February" can skip years).
SEARCH_WINDOWS = (timedelta(days=2), timedelta(days=40), timedelta(days=800), timedelta(days=3000))
MAX_PLAYS = 20
FORBIDDEN_PARTS = ("DTSTART", "SECONDLY")


class RecurrenceError(ValueError):
    """A rule, zone or time that cannot be scheduled; the text says why."""


@dataclass(frozen=True)
class Recurrence:
    starts_local: datetime  # naive wall-clock time of the first occurrence
    timezone: str  # IANA zone, e.g. Asia/Ho_Chi_Minh
    rule: str | None = None  # "FREQ=WEEKLY;BYDAY=MO,WE,FR" (no DTSTART); None = once
    exdates_local: tuple[datetime, ...] = ()  # occurrences left out, in local time
    ends_at: datetime | None = None  # UTC hard end: no play starts at or after it
    plays: int = 1  # per occurrence ("three times ...")
    gap_s: int = 0  # "... two minutes apart", start to start

    def zone(self) -> ZoneInfo:
        return zone(self.timezone)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"unknown time zone {name!r}") from None


def parse_rule(rule: str, starts_local: datetime) -> rrule:
    """The dateutil rule for an RFC 5545 RRULE value, or RecurrenceError saying why."""
    text = rule.strip().removeprefix("RRULE:")
    if any(part in text.upper() for part in FORBIDDEN_PARTS):
        raise RecurrenceError("the rule may not set DTSTART or repeat every second")
    try:
        parsed = rrulestr(text, dtstart=starts_local)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"not a valid RFC 5545 recurrence rule: {exc}") from None
    if not isinstance(parsed, rrule):
        raise RecurrenceError("give a single RRULE (exceptions go in exdates)")
    return parsed


def validate(recurrence: Recurrence) -> None:
    recurrence.zone()
    if recurrence.starts_local.tzinfo is not None:
        raise RecurrenceError("starts_local is a wall-clock time, without a zone")
    if not 1 <= recurrence.plays <= MAX_PLAYS:
        raise RecurrenceError(f"plays must be between 1 and {MAX_PLAYS}")
    if recurrence.plays > 1 and recurrence.gap_s <= 0:
        raise RecurrenceError("several plays need a gap between them")
    if recurrence.rule is not None:
        parse_rule(recurrence.rule, recurrence.starts_local)


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """Wall-clock time to an instant, by the rule in the module docstring."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _local_occurrences(recurrence: Recurrence, lo: datetime, hi: datetime) -> Iterable[datetime]:
    if recurrence.rule is None:
        return [recurrence.starts_local] if lo <= recurrence.starts_local <= hi else []
    rule = parse_rule(recurrence.rule, recurrence.starts_local)
    return rule.between(lo, hi, inc=True)


def slots(recurrence: Recurrence, start: datetime, end: datetime) -> list[datetime]:
    """Every play that starts in [start, end), as UTC instants in order."""
    return [slot for slot, _ in plays(recurrence, start, end)]


def plays(
    recurrence: Recurrence, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Every play that starts in [start, end) in order: its UTC instant, and the local
    occurrence it belongs to (what `exdates_local` names to leave a whole one out)."""
    tz = recurrence.zone()
    # Local bounds with a day's margin either side: offsets are under 15 hours, and a
    # play's gap can push it past the occurrence's own day.
    margin = timedelta(days=1, seconds=recurrence.gap_s * recurrence.plays)
    lo = to_local(start, tz) - margin
    hi = to_local(end, tz) + timedelta(days=1)
    excluded = set(recurrence.exdates_local)
    found: list[tuple[datetime, datetime]] = []
    for local in _local_occurrences(recurrence, lo, hi):
        if local in excluded:
            continue
        first = to_utc(local, tz)
        for k in range(recurrence.plays):
            slot = first + timedelta(seconds=k * recurrence.gap_s)
            if recurrence.ends_at is not None and slot >= recurrence.ends_at:
                break
            if start <= slot < end:
                found.append((slot, local))
    return sorted(found)


def next_slot(recurrence: Recurrence, after: datetime) -> datetime | None:
    """The first play strictly after `after`, or None when the schedule is over."""
    start = after + timedelta(microseconds=1)
    for window in SEARCH_WINDOWS:
        end = start + window
        if recurrence.ends_at is not None:
            end = min(end, recurrence.ends_at)
        found = slots(recurrence, start, end)
        if found:
            return found[0]
        if recurrence.ends_at is not None and end >= recurrence.ends_at:
            return None
    return None
