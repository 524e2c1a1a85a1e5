"""The centre's working calendar: official holidays and make-up workdays (chinese-calendar), the
configured working hours, and the local overrides an admin adds (kept in the database, so every
hub process counts deadlines the same way)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ScalarSelect, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fusionhub.dispatch.access import Viewer, require_role
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Invalid, NotFound
from fusionhub.dispatch.models import CalendarOverride, to_epoch
from fusionhub.dispatch.worktime import Limit, WorkCalendar, deadline, official_workday

log = logging.getLogger(__name__)

OVERRIDE_KINDS = ("holiday", "workday")
CALENDAR_READERS = ("admin", "commander", "duty")
MAX_LISTED_DAYS = 400
# every override as (day, kind): what a calendar is built from
OVERRIDE_ROWS = select(CalendarOverride.day, CalendarOverride.kind)


def override_dict(row: CalendarOverride) -> dict[str, Any]:
    """`CalendarOverride` of the API."""
    return {
        "date": row.day.isoformat(),
        "kind": row.kind,
        "note": row.note,
        "created_by": row.created_by,
        "created_at": to_epoch(row.created_at),
    }


def parse_day(value: str, field: str = "date") -> date:
    """A `YYYY-MM-DD` date; Invalid otherwise."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise Invalid(field, "must be a date like 2025-10-01") from None


def calendar_fingerprint() -> ScalarSelect[Any]:
    """A column that spells out every override (`YYYY-MM-DD:kind`, comma-separated, in no set
    order): a statement that reads it along with its own rows tells whether a calendar built
    earlier still holds, without another round trip for the overrides themselves."""
    return select(
        func.aggregate_strings(cast(CalendarOverride.day, String) + ":" + CalendarOverride.kind, ",")
    ).scalar_subquery()


class CalendarService(ServiceCore):
    """Working time: the calendar every deadline is counted in, and the admin's overrides."""

    async def work_calendar(
        self,
        reader: AsyncSession | AsyncConnection | None = None,
        *,
        fingerprint: Any = None,
        overrides: Callable[[], Awaitable[Sequence[Sequence[Any]]]] | None = None,
    ) -> WorkCalendar:
        """The working calendar as it stands now (overrides read from the database: through
        `reader` when given, a transaction's own; or by `overrides`, which returns their (day,
        kind) rows; else on a connection of its own).

        Within a transition the case's statement has read the overrides' fingerprint already
        (`fingerprint`): a calendar built from the same overrides, in this process, is reused."""
        cached: tuple[Any, WorkCalendar] | None = self.__dict__.get("_calendar_cache")
        if fingerprint is not None and cached is not None and cached[0] == fingerprint:
            return cached[1]
        rows: Sequence[Sequence[Any]]
        if overrides is not None:
            rows = await overrides()
        elif reader is None:
            async with self.read_session() as own:
                rows = (await own.execute(OVERRIDE_ROWS)).all()
        else:
            rows = (await reader.execute(OVERRIDE_ROWS)).all()
        cal = WorkCalendar(
            tz=ZoneInfo(self.timezone),
            periods=self.config.periods(),
            extra_holidays=frozenset(day for day, kind in rows if kind == "holiday"),
            extra_workdays=frozenset(day for day, kind in rows if kind == "workday"),
        )
        self._warn_uncovered(cal)
        if fingerprint is not None:
            # read after the fingerprint: if an override changed in between, the next
            # transition's fingerprint differs from this one and the calendar is read again
            self.__dict__["_calendar_cache"] = (fingerprint, cal)
        return cal

    def _warn_uncovered(self, cal: WorkCalendar) -> None:
        # the package learns a year's holidays when the State Council publishes them (late in the year
        # before): until an update, weekdays stand in; say so once per year per process
        year = self.now().astimezone(cal.tz).year
        warned: set[int] = self.__dict__.setdefault("_uncovered_years", set())
        if year in warned or cal.is_covered(date(year, 1, 1)):
            return
        warned.add(year)
        log.warning(
            "the official holiday calendar does not cover %s: Monday-Friday count as working days; "
            "update chinese-calendar or add that year's holidays as calendar overrides",
            year,
        )

    async def list_calendar_overrides(self, viewer: Viewer) -> list[dict[str, Any]]:
        """The local overrides, by date."""
        require_role(viewer, *CALENDAR_READERS)
        async with self.read_session() as session:
            rows = await session.scalars(select(CalendarOverride).order_by(CalendarOverride.day))
            return [override_dict(r) for r in rows]

    async def set_calendar_override(self, viewer: Viewer, day: date, kind: str, note: str | None = None) -> dict[str, Any]:
        """Admin makes `day` an extra holiday or an extra workday (replacing an override of that day)."""
        require_role(viewer, "admin")
        if kind not in OVERRIDE_KINDS:
            raise Invalid("kind", f"one of {', '.join(OVERRIDE_KINDS)}")
        text = (note or "").strip()[:256] or None
        async with self.write_session() as session, session.begin():
            row = await session.get(CalendarOverride, day)
            if row is None:
                row = CalendarOverride(day=day, created_at=self.now())
                session.add(row)
            row.kind, row.note, row.created_by = kind, text, int(viewer["id"])
        log.info("calendar: %s is now an extra %s (user %s)", day, kind, viewer["id"])
        return override_dict(row)

    async def delete_calendar_override(self, viewer: Viewer, day: date) -> None:
        """Admin removes the override of `day`; NotFound if there is none."""
        require_role(viewer, "admin")
        async with self.write_session() as session, session.begin():
            row = await session.get(CalendarOverride, day)
            if row is None:
                raise NotFound(f"no calendar override on {day}")
            await session.delete(row)

    async def calendar_days(self, viewer: Viewer, start: date, end: date) -> list[dict[str, Any]]:
        """Each day from `start` to `end`: whether it is a working day and why."""
        require_role(viewer, *CALENDAR_READERS)
        if end < start or (end - start).days >= MAX_LISTED_DAYS:
            raise Invalid("to", f"must be on or after `from`, at most {MAX_LISTED_DAYS} days on")
        cal = await self.work_calendar()
        days = []
        day = start
        while day <= end:
            override = (
                "holiday" if day in cal.extra_holidays else "workday" if day in cal.extra_workdays else None
            )
            days.append(
                {"date": day.isoformat(), "workday": cal.is_workday(day), "official": official_workday(day), "override": override}
            )
            day += timedelta(days=1)
        return days

    async def preview_deadline(self, viewer: Viewer, start: datetime, limit: Limit) -> dict[str, Any]:
        """When a limit started at `start` runs out, counted as the hub counts it."""
        require_role(viewer, *CALENDAR_READERS)
        cal = await self.work_calendar()
        return {"start": to_epoch(start), "limit": limit.as_dict(), "due_at": to_epoch(deadline(start, limit, cal))}
