"""Recurrence expansion: month ends, leap days, daylight saving changes, plays and gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schedules.recurrence import Recurrence, RecurrenceError, next_slot, slots, validate

VN = "Asia/Ho_Chi_Minh"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local_days(found: list[datetime], zone: str = VN) -> list[str]:
    from zoneinfo import ZoneInfo

    return [f.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") for f in found]


def test_daily_morning_news_in_vietnam_is_the_previous_evening_in_utc() -> None:
    rec = Recurrence(datetime(2026, 11, 23, 6, 0), VN, "FREQ=DAILY")
    found = slots(rec, utc(2026, 11, 23), utc(2026, 11, 26))
    assert found == [utc(2026, 11, 23, 23), utc(2026, 11, 24, 23), utc(2026, 11, 25, 23)]


def test_chosen_weekdays_and_exceptions() -> None:
    rec = Recurrence(
        datetime(2026, 11, 23, 17, 30),
        VN,
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        exdates_local=(datetime(2026, 11, 25, 17, 30),),  # a holiday
    )
    found = slots(rec, utc(2026, 11, 22), utc(2026, 12, 1))
    assert local_days(found) == ["2026-11-23 17:30", "2026-11-27 17:30", "2026-11-30 17:30"]


def test_the_31st_skips_shorter_months_and_the_last_day_follows_them() -> None:
    on_31st = Recurrence(datetime(2026, 1, 31, 8, 0), VN, "FREQ=MONTHLY;BYMONTHDAY=31")
    found = slots(on_31st, utc(2026, 1, 1), utc(2026, 9, 1))
    assert [d[:10] for d in local_days(found)] == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
        "2026-08-31",
    ]
    last_day = Recurrence(datetime(2027, 12, 31, 8, 0), VN, "FREQ=MONTHLY;BYMONTHDAY=-1")
    found = slots(last_day, utc(2028, 1, 1), utc(2028, 4, 1))
    assert [d[:10] for d in local_days(found)] == ["2028-01-31", "2028-02-29", "2028-03-31"]


def test_leap_day_comes_every_four_years() -> None:
    rec = Recurrence(datetime(2028, 2, 29, 7, 0), VN, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29")
    found = slots(rec, utc(2028, 1, 1), utc(2037, 1, 1))
    assert [d[:10] for d in local_days(found)] == ["2028-02-29", "2032-02-29", "2036-02-29"]
    assert next_slot(rec, utc(2028, 3, 1)) == found[1], "years are searched, not days"


def test_wall_clock_time_holds_across_daylight_saving_changes() -> None:
    berlin = "Europe/Berlin"  # clocks go forward 2026-03-29 02:00, back 2026-10-25 03:00
    six = Recurrence(datetime(2026, 3, 28, 6, 0), berlin, "FREQ=DAILY")
    assert slots(six, utc(2026, 3, 28), utc(2026, 3, 30)) == [
        utc(2026, 3, 28, 5),  # 06:00 CET
        utc(2026, 3, 29, 4),  # 06:00 CEST
    ]
    in_the_gap = Recurrence(datetime(2026, 3, 28, 2, 30), berlin, "FREQ=DAILY")
    found = slots(in_the_gap, utc(2026, 3, 28), utc(2026, 3, 31))
    assert local_days(found, berlin) == [
        "2026-03-28 02:30",
        "2026-03-29 03:30",  # 02:30 does not exist that day: played an hour later, not lost
        "2026-03-30 02:30",
    ]
    twice = Recurrence(datetime(2026, 10, 24, 2, 30), berlin, "FREQ=DAILY")
    found = slots(twice, utc(2026, 10, 24), utc(2026, 10, 27))
    assert found == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert len(found) == 3, "02:30 happens twice on 25 October: played once"


def test_three_plays_two_minutes_apart_until_a_hard_end() -> None:
    rec = Recurrence(
        datetime(2026, 11, 23, 19, 0),
        VN,
        "FREQ=DAILY",
        ends_at=utc(2026, 11, 24, 12, 3),  # 19:03 local on the 24th
        plays=3,
        gap_s=120,
    )
    found = slots(rec, utc(2026, 11, 1), utc(2026, 12, 31))
    assert local_days(found) == [
        "2026-11-23 19:00",
        "2026-11-23 19:02",
        "2026-11-23 19:04",
        "2026-11-24 19:00",
        "2026-11-24 19:02",
    ]
    assert next_slot(rec, found[-1]) is None


def test_a_one_off_plays_once() -> None:
    rec = Recurrence(datetime(2026, 12, 1, 9, 15), VN)
    assert slots(rec, utc(2026, 11, 1), utc(2027, 1, 1)) == [utc(2026, 12, 1, 2, 15)]
    assert next_slot(rec, utc(2026, 12, 1, 2, 15)) is None
    assert next_slot(rec, utc(2026, 11, 30)) == utc(2026, 12, 1, 2, 15)


def test_rule_count_and_until_inside_the_rule() -> None:
    counted = Recurrence(datetime(2026, 11, 23, 6, 0), VN, "FREQ=DAILY;COUNT=2")
    assert len(slots(counted, utc(2026, 11, 1), utc(2027, 1, 1))) == 2
    until = Recurrence(datetime(2026, 11, 23, 6, 0), VN, "FREQ=WEEKLY;UNTIL=20261214T060000")
    assert len(slots(until, utc(2026, 11, 1), utc(2027, 1, 1))) == 4
    first_day = slots(until, utc(2026, 11, 22), utc(2026, 11, 22) + timedelta(days=1))
    assert first_day == [utc(2026, 11, 22, 23)], "06:00 in Vietnam is 23:00 UTC the day before"


@pytest.mark.parametrize(
    ("rec", "says"),
    [
        (Recurrence(datetime(2026, 1, 1, 6), VN, "FREQ=SOMETIMES"), "not a valid"),
        (Recurrence(datetime(2026, 1, 1, 6), VN, "DTSTART:20260101T060000"), "DTSTART"),
        (Recurrence(datetime(2026, 1, 1, 6), VN, "FREQ=SECONDLY"), "second"),
        (Recurrence(datetime(2026, 1, 1, 6), "Mars/Olympus"), "time zone"),
        (Recurrence(datetime(2026, 1, 1, 6), VN, plays=3), "gap"),
        (Recurrence(datetime(2026, 1, 1, 6), VN, plays=99, gap_s=60), "plays"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rec: Recurrence, says: str) -> None:
    with pytest.raises(RecurrenceError, match=says):
        validate(rec)
