"""deadline(start, limit): nights, lunch breaks, weekends, the National Day golden week, make-up
Saturdays, local overrides, years the official calendar does not know, and the inverse (elapsed)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fusionhub.dispatch.worktime import (
    Limit,
    WorkCalendar,
    deadline,
    elapsed,
    official_workday,
    remaining,
    working_seconds,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()  # 08:30-12:00, 13:30-17:30, Asia/Shanghai


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A Beijing wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def due(start: datetime, kind: str, amount: float, cal: WorkCalendar = CAL) -> datetime:
    end = deadline(start, Limit(kind, amount), cal)  # type: ignore[arg-type]
    assert end.tzinfo is not None and end.utcoffset() == timedelta(0)
    return end.astimezone(SH)


# 2025-09-15 is a Monday; the golden week 2025 is Oct 1-8 with make-up workdays Sun Sep 28 and Sat Oct 11.
@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (at(2025, 9, 15, 9), 2, at(2025, 9, 15, 11)),  # inside the morning
        (at(2025, 9, 15, 11), 2, at(2025, 9, 15, 14, 30)),  # over the lunch break
        (at(2025, 9, 15, 12, 30), 1, at(2025, 9, 15, 14, 30)),  # starts in the lunch break
        (at(2025, 9, 15, 17), 1, at(2025, 9, 16, 9)),  # over the night
        (at(2025, 9, 15, 20), 1, at(2025, 9, 16, 9, 30)),  # starts at night
        (at(2025, 9, 15, 6), 0.5, at(2025, 9, 15, 9)),  # starts before work
        (at(2025, 9, 15, 8, 30), 7.5, at(2025, 9, 15, 17, 30)),  # exactly one working day
        (at(2025, 9, 15, 8, 30), 3.5, at(2025, 9, 15, 12)),  # ends at a period's end, not the next start
        (at(2025, 9, 19, 17), 1, at(2025, 9, 22, 9)),  # Friday evening to Monday
        (at(2025, 9, 20, 10), 1, at(2025, 9, 22, 9, 30)),  # starts on a Saturday
        (at(2025, 9, 27, 10), 1, at(2025, 9, 28, 9, 30)),  # Saturday to the make-up Sunday
        (at(2025, 9, 30, 17), 1, at(2025, 10, 9, 9)),  # into the golden week: out on Oct 9
        (at(2025, 10, 3, 10), 2, at(2025, 10, 9, 10, 30)),  # starts inside the golden week
        (at(2025, 10, 10, 17), 1, at(2025, 10, 11, 9)),  # Friday to the make-up Saturday
        (at(2025, 10, 11, 17), 1, at(2025, 10, 13, 9)),  # make-up Saturday, then Sunday off
        (at(2025, 9, 15, 9), 0.25, at(2025, 9, 15, 9, 15)),  # a fraction of an hour
        (at(2025, 9, 15, 9), 15, at(2025, 9, 17, 9)),  # two working days of hours
    ],
)
def test_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert due(start, "working_hours", hours) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (at(2025, 9, 15, 10), 1, at(2025, 9, 16, 10)),  # Monday 10:00 -> Tuesday 10:00
        (at(2025, 9, 19, 10), 1, at(2025, 9, 22, 10)),  # Friday -> Monday
        (at(2025, 9, 15, 10), 3, at(2025, 9, 18, 10)),
        (at(2025, 9, 30, 10), 1, at(2025, 10, 9, 10)),  # over the whole golden week
        (at(2025, 9, 26, 10), 2, at(2025, 9, 29, 10)),  # Fri -> make-up Sun 28 -> Mon 29
        (at(2025, 10, 10, 10), 1, at(2025, 10, 11, 10)),  # to the make-up Saturday
        (at(2025, 9, 20, 10), 1, at(2025, 9, 22, 17, 30)),  # from a Saturday: the whole Monday
        (at(2024, 9, 30, 15), 1, at(2024, 10, 8, 15)),  # golden week 2024 (Oct 1-7)
        (at(2025, 9, 15, 10), 0.5, at(2025, 9, 15, 15, 15)),  # half a day = 3h45 of working time
    ],
)
def test_working_days(start: datetime, days: float, expected: datetime) -> None:
    assert due(start, "working_days", days) == expected


def test_urgent_hours_run_round_the_clock() -> None:
    assert due(at(2025, 9, 15, 23), "urgent_hours", 2) == at(2025, 9, 16, 1)
    assert due(at(2025, 10, 1, 12), "urgent_hours", 4) == at(2025, 10, 1, 16)  # a holiday counts
    assert due(at(2025, 9, 20, 3), "urgent_hours", 0.5) == at(2025, 9, 20, 3, 30)


def test_calendar_days_ignore_holidays() -> None:
    assert due(at(2025, 9, 30, 10), "calendar_days", 3) == at(2025, 10, 3, 10)
    assert due(at(2025, 9, 19, 17), "calendar_days", 1) == at(2025, 9, 20, 17)


def test_start_in_any_time_zone_gives_the_same_instant() -> None:
    start = at(2025, 9, 15, 17)
    assert deadline(start.astimezone(UTC), Limit("working_hours", 1), CAL) == deadline(start, Limit("working_hours", 1), CAL)
    assert deadline(start, Limit("working_hours", 1), CAL) == datetime(2025, 9, 16, 1, 0, tzinfo=UTC)


def test_local_overrides_beat_the_official_calendar() -> None:
    cal = WorkCalendar(
        extra_holidays=frozenset({date(2025, 9, 16)}),  # a local holiday on a Tuesday
        extra_workdays=frozenset({date(2025, 9, 21)}),  # the centre works this Sunday
    )
    assert due(at(2025, 9, 15, 17), "working_hours", 1, cal) == at(2025, 9, 17, 9)
    assert due(at(2025, 9, 19, 17), "working_hours", 1, cal) == at(2025, 9, 21, 9)
    # an override can also take a make-up workday away
    cal2 = WorkCalendar(extra_holidays=frozenset({date(2025, 10, 11)}))
    assert due(at(2025, 10, 10, 17), "working_hours", 1, cal2) == at(2025, 10, 13, 9)


def test_a_year_the_package_does_not_know_uses_weekdays_and_overrides() -> None:
    cal = WorkCalendar(official=lambda d: None)
    assert not cal.is_covered(date(2030, 1, 1))
    assert due(at(2030, 1, 4, 17), "working_hours", 1, cal) == at(2030, 1, 7, 9)  # Fri -> Mon
    with_override = WorkCalendar(official=lambda d: None, extra_holidays=frozenset({date(2030, 1, 7)}))
    assert due(at(2030, 1, 4, 17), "working_hours", 1, with_override) == at(2030, 1, 8, 9)
    assert official_workday(date(1990, 1, 1)) is None
    assert official_workday(date(2025, 9, 28)) is True and official_workday(date(2025, 10, 1)) is False


def test_custom_working_hours() -> None:
    cal = WorkCalendar(periods=((time(9, 0), time(18, 0)),))
    assert cal.day_seconds == 9 * 3600
    assert due(at(2025, 9, 15, 17), "working_hours", 2, cal) == at(2025, 9, 16, 10)
    assert due(at(2025, 9, 15, 12), "working_days", 1, cal) == at(2025, 9, 16, 12)


def test_working_seconds_and_elapsed() -> None:
    assert working_seconds(at(2025, 9, 15, 8), at(2025, 9, 15, 20), CAL) == 7.5 * 3600
    assert working_seconds(at(2025, 9, 30, 17), at(2025, 10, 9, 9), CAL) == 3600  # 30 min + 30 min
    assert working_seconds(at(2025, 9, 15, 10), at(2025, 9, 15, 9), CAL) == 0
    assert elapsed(at(2025, 9, 15, 10), at(2025, 9, 16, 10), "working_days", CAL) == pytest.approx(1)
    assert elapsed(at(2025, 9, 15, 10), at(2025, 9, 16, 10), "calendar_days", CAL) == pytest.approx(1)
    assert elapsed(at(2025, 9, 15, 10), at(2025, 9, 16, 10), "urgent_hours", CAL) == pytest.approx(24)
    assert elapsed(at(2025, 9, 15, 10), at(2025, 9, 16, 10), "working_hours", CAL) == pytest.approx(7.5)
    limit = Limit("working_hours", 4)
    assert remaining(limit, at(2025, 9, 15, 9), at(2025, 9, 15, 11), CAL) == pytest.approx(2)
    assert remaining(limit, at(2025, 9, 15, 9), at(2025, 9, 16, 9), CAL) == pytest.approx(-3.5)


@pytest.mark.parametrize("kind", ["urgent_hours", "working_hours", "working_days", "calendar_days"])
def test_elapsed_is_the_inverse_of_deadline(kind: str) -> None:
    rng = random.Random(30428)
    origin = at(2024, 12, 20)
    for _ in range(200):
        start = origin + timedelta(minutes=rng.randrange(0, 400 * 24 * 60))
        amount = rng.choice([0.25, 1, 2, 3.5, 5, 8, 24]) if "hours" in kind else rng.choice([0.5, 1, 2, 3, 5, 10])
        end = deadline(start, Limit(kind, amount), CAL)  # type: ignore[arg-type]
        assert end >= start
        assert elapsed(start, end, kind, CAL) == pytest.approx(amount, abs=1e-6), (start, kind, amount)  # type: ignore[arg-type]


def test_warning_point_is_a_share_of_working_time() -> None:
    limit = Limit("working_hours", 5)
    start = at(2025, 9, 15, 11)
    # 11:00 + 4 h of working time (1 h before lunch, 3 h after) and + 5 h
    assert deadline(start, limit.scaled(0.8), CAL).astimezone(SH) == at(2025, 9, 15, 16, 30)
    assert deadline(start, limit, CAL).astimezone(SH) == at(2025, 9, 15, 17, 30)


def test_bad_limits_and_calendars_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        Limit("working_hours", 0)
    with pytest.raises(ValueError, match="limit type"):
        Limit("fortnights", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        deadline(datetime(2025, 9, 15, 9), Limit("working_hours", 1), CAL)
    with pytest.raises(ValueError, match="overlap"):
        WorkCalendar(periods=((time(8), time(12)), (time(11), time(17))))
    with pytest.raises(ValueError, match="end after"):
        WorkCalendar(periods=((time(12), time(8)),))
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(extra_holidays=frozenset({date(2025, 1, 2)}), extra_workdays=frozenset({date(2025, 1, 2)}))
    never = WorkCalendar(official=lambda d: False)
    with pytest.raises(ValueError, match="no working time"):
        deadline(at(2025, 9, 15, 9), Limit("working_hours", 1), never)
