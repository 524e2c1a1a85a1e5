"""Time limits the way city-management centres count them. Pure logic, no I/O.

A limit has a type and an amount:
- `urgent_hours`: hours round the clock (nights, weekends and holidays count);
- `working_hours`: hours inside the centre's working periods on working days;
- `working_days`: working days; one working day is the length of the centre's working periods,
  so "1 working day" from Monday 10:00 ends Tuesday 10:00 and from Friday 10:00 ends Monday 10:00;
- `calendar_days`: days of 24 hours round the clock.

Working days follow the official public-holiday and make-up-workday calendar (the
`chinese-calendar` package, which knows the State Council's notices year by year), then the
centre's own overrides (extra holidays, extra workdays). For a year the package does not know
yet, weekdays are working days until an admin adds that year's overrides.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import chinese_calendar

LimitType = Literal["urgent_hours", "working_hours", "working_days", "calendar_days"]
LIMIT_TYPES: tuple[str, ...] = get_args(LimitType)
# how far a deadline may lie: a longer search means a broken calendar (no working day at all)
MAX_SPAN_DAYS = 3660


@dataclass(frozen=True)
class Limit:
    """A time limit: `amount` units of `type`."""

    type: LimitType
    amount: float

    def __post_init__(self) -> None:
        if self.type not in LIMIT_TYPES:
            raise ValueError(f"limit type must be one of {', '.join(LIMIT_TYPES)}, not {self.type!r}")
        if not self.amount > 0:
            raise ValueError("a limit's amount must be more than 0")

    def scaled(self, share: float) -> Limit:
        """The same kind of limit, `share` of it long (e.g. 0.8 for the warning point)."""
        return Limit(self.type, self.amount * share)

    def as_dict(self) -> dict[str, float | str]:
        """The JSON shape: `{"type", "amount"}`."""
        return {"type": self.type, "amount": self.amount}


@functools.lru_cache(maxsize=4096)
def official_workday(day: date) -> bool | None:
    """Whether the official calendar makes `day` a working day; None for a year it does not cover.
    Remembered per day: a deadline walks the days it spans, a transition or two each, and the
    package's lookup validates its argument every time (a few percent of a transition)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days and which hours of them are working time, in one time zone."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    periods: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    official: Callable[[date], bool | None] = official_workday

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("working hours need at least one period")
        previous_end: time | None = None
        for start, end in self.periods:
            if not start < end:
                raise ValueError(f"working period {start:%H:%M}-{end:%H:%M} must end after it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError("working periods must be in order and must not overlap")
            previous_end = end
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise ValueError(f"{min(both)} cannot be both an extra holiday and an extra workday")

    @property
    def day_seconds(self) -> float:
        """Working seconds in one working day."""
        return float(sum(_seconds(start, end) for start, end in self.periods))

    def is_workday(self, day: date) -> bool:
        """Local overrides first, then the official calendar, then Monday to Friday."""
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        official = self.official(day)
        return day.weekday() < 5 if official is None else official

    def is_covered(self, day: date) -> bool:
        """Whether the official calendar knows `day`'s year (else weekdays stand in for it)."""
        return self.official(day) is not None

    def _periods_on(self, day: date) -> Iterable[tuple[datetime, datetime]]:
        if not self.is_workday(day):
            return ()
        return [
            (datetime.combine(day, start, self.tz), datetime.combine(day, end, self.tz))
            for start, end in self.periods
        ]


def _seconds(start: time, end: time) -> float:
    return (datetime.combine(date.min, end) - datetime.combine(date.min, start)).total_seconds()


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("times must be time-zone aware")
    return value


def _add_working_seconds(start: datetime, seconds: float, cal: WorkCalendar) -> datetime:
    if seconds <= 0:
        return start
    local = start.astimezone(cal.tz)
    day = local.date()
    left = seconds
    for _ in range(MAX_SPAN_DAYS):
        for period_start, period_end in cal._periods_on(day):
            begin = max(period_start, local)
            if begin >= period_end:
                continue
            available = (period_end - begin).total_seconds()
            # `<=`: a limit that uses a period up to its end ends there, not at the next start
            if left <= available:
                return begin + timedelta(seconds=left)
            left -= available
        day += timedelta(days=1)
    raise ValueError(f"no working time within {MAX_SPAN_DAYS} days of {start.isoformat()}")


def working_seconds(start: datetime, end: datetime, cal: WorkCalendar) -> float:
    """Working seconds between two instants (0 when `end` is not after `start`)."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return 0.0
    first = start.astimezone(cal.tz).date()
    last = end.astimezone(cal.tz).date()
    if (last - first).days > MAX_SPAN_DAYS:
        raise ValueError(f"spans longer than {MAX_SPAN_DAYS} days are not counted")
    total = 0.0
    day = first
    while day <= last:
        for period_start, period_end in cal._periods_on(day):
            overlap = (min(period_end, end) - max(period_start, start)).total_seconds()
            if overlap > 0:
                total += overlap
        day += timedelta(days=1)
    return total


def deadline(start: datetime, limit: Limit, cal: WorkCalendar) -> datetime:
    """When `limit` runs out if it starts at `start` (aware), as an aware UTC datetime."""
    start = _aware(start)
    if limit.type == "urgent_hours":
        end = start + timedelta(hours=limit.amount)
    elif limit.type == "calendar_days":
        end = start + timedelta(days=limit.amount)
    elif limit.type == "working_hours":
        end = _add_working_seconds(start, limit.amount * 3600.0, cal)
    else:
        end = _add_working_seconds(start, limit.amount * cal.day_seconds, cal)
    return end.astimezone(UTC)


def elapsed(start: datetime, end: datetime, limit_type: LimitType, cal: WorkCalendar) -> float:
    """How much of a limit of `limit_type` the span from `start` to `end` uses, in its units."""
    start, end = _aware(start), _aware(end)
    if limit_type == "urgent_hours":
        return max(0.0, (end - start).total_seconds() / 3600.0)
    if limit_type == "calendar_days":
        return max(0.0, (end - start).total_seconds() / 86400.0)
    seconds = working_seconds(start, end, cal)
    return seconds / 3600.0 if limit_type == "working_hours" else seconds / cal.day_seconds


def remaining(limit: Limit, start: datetime, at: datetime, cal: WorkCalendar) -> float:
    """What is left of `limit` (started at `start`) at `at`, in its units; negative when overrun."""
    return limit.amount - elapsed(start, at, limit.type, cal)
