"""SLA due times counted in business minutes (opening hours, weekends, holidays).

A complaint filed on Friday evening is due Monday morning, not Saturday: customers are
told a time the shop can actually keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypedDict
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class DueParams(TypedDict):
    """A due time's template parameters (``BusinessCalendar.due_params``)."""

    due: str
    zone: str
    utc: str


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    zone: ZoneInfo
    days: dict[str, tuple[time, time]]
    holidays: frozenset[date]

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        if day in self.holidays:
            return None
        hours = self.days.get(WEEKDAYS[day.weekday()])
        if hours is None:
            return None
        start = datetime.combine(day, hours[0], tzinfo=self.zone)
        end = datetime.combine(day, hours[1], tzinfo=self.zone)
        return start, end

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` of opening time after ``start`` have elapsed (UTC)."""
        if not any(self.days.values()):
            return (start + timedelta(minutes=minutes)).astimezone(UTC)
        local = start.astimezone(self.zone)
        remaining = timedelta(minutes=minutes)
        day = local.date()
        for _ in range(366 * 2):  # bounded: a calendar with no open day ends the loop
            window = self._window(day)
            if window is not None:
                open_at, close_at = window
                begin = max(open_at, local)
                if begin < close_at:
                    available = close_at - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), tzinfo=self.zone)
        return (start + timedelta(minutes=minutes)).astimezone(UTC)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        window = self._window(local.date())
        return window is not None and window[0] <= local < window[1]

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def utc_offset(self, moment: datetime) -> str:
        """The shop's UTC offset at that moment (summer time included): ``UTC+1``, ``UTC+5:30``."""
        offset = self.local(moment).utcoffset() or timedelta(0)
        minutes = round(offset.total_seconds() / 60)
        if not minutes:
            return "UTC"
        hours, rest = divmod(abs(minutes), 60)
        return f"UTC{'-' if minutes < 0 else '+'}{hours}" + (f":{rest:02d}" if rest else "")

    def due_params(self, moment: datetime | None) -> DueParams:
        """A due time for a customer's reply template: ``{due}`` in the shop's local time,
        ``{zone}`` (``Europe/Amsterdam``) and ``{utc}`` (``UTC+1``) — a customer elsewhere
        must know which 17:00 is meant; each language's template words it."""
        if moment is None:
            return {"due": "-", "zone": self.zone.key, "utc": self.utc_offset(datetime.now(UTC))}
        return {
            "due": self.local(moment).strftime("%Y-%m-%d %H:%M"),
            "zone": self.zone.key,
            "utc": self.utc_offset(moment),
        }
