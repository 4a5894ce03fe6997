from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from desk.sla import BusinessCalendar

AMS = ZoneInfo("Europe/Amsterdam")
WEEK = {d: (time(9), time(17)) for d in ("mon", "tue", "wed", "thu", "fri")}


def calendar(holidays: frozenset[date] = frozenset()) -> BusinessCalendar:
    return BusinessCalendar(AMS, WEEK, holidays)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)


def test_minutes_inside_the_same_day() -> None:
    due = calendar().add_business_minutes(local(2026, 11, 23, 10, 0), 60)
    assert due == local(2026, 11, 23, 11, 0).astimezone(UTC)


def test_friday_evening_is_due_monday_morning() -> None:
    friday_evening = local(2026, 11, 27, 16, 30)
    due = calendar().add_business_minutes(friday_evening, 60)
    assert due.astimezone(AMS) == local(2026, 11, 30, 9, 30)


def test_before_opening_starts_at_opening() -> None:
    due = calendar().add_business_minutes(local(2026, 11, 24, 6, 0), 30)
    assert due.astimezone(AMS) == local(2026, 11, 24, 9, 30)


def test_holidays_are_skipped() -> None:
    cal = calendar(frozenset({date(2026, 12, 25)}))
    due = cal.add_business_minutes(local(2026, 12, 24, 16, 0), 120)
    # Thursday 24th: one hour left; Friday 25th is a holiday; weekend; Monday 28th 09:00 + 1 h.
    assert due.astimezone(AMS) == local(2026, 12, 28, 10, 0)


def test_multi_day_targets_span_days() -> None:
    due = calendar().add_business_minutes(local(2026, 11, 23, 9, 0), 3 * 8 * 60)
    assert due.astimezone(AMS) == local(2026, 11, 25, 17, 0)


def test_is_open() -> None:
    cal = calendar()
    assert cal.is_open(local(2026, 11, 23, 12, 0))
    assert not cal.is_open(local(2026, 11, 22, 12, 0))  # Sunday
    assert not cal.is_open(local(2026, 11, 23, 17, 0))


def test_a_calendar_without_open_days_counts_wall_clock() -> None:
    cal = BusinessCalendar(AMS, {}, frozenset())
    start = local(2026, 11, 23, 12, 0)
    assert cal.add_business_minutes(start, 90) == local(2026, 11, 23, 13, 30).astimezone(UTC)
