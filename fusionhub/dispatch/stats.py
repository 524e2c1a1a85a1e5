"""Statistics over a range of days: filed, dispatched, handled, closed, on-time and closure rates,
overdue counts, grouped by source, category, status, region or team; and the top recurring problems.

The counters come from the daily rollup (rollup.py), summed per area, so a month of a city's
cases is a few hundred rows; only `overdue_open` (cases whose clock runs past their deadline now)
is read live from the cases, through the partial index that holds only cases whose clock runs
(on PostgreSQL it covers the grouping columns: the count reads the index alone).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, bindparam, case, func, null, select, tuple_, union_all

from fusionhub.dispatch.access import Viewer, region_filter, region_filter_bound, region_params, require_role
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.db import Rows, reader
from fusionhub.dispatch.errors import Invalid
from fusionhub.dispatch.models import CLOCK_RUNNING, Case, Team, UtcDateTime, literal_in
from fusionhub.dispatch.rollup import DIM_CATEGORY, DIM_SOURCE, DIM_STATUS, DIM_TEAM, NO_TEAM, area_rows, rollup_rows
from fusionhub.dispatch.workflow import FINISHED

GROUPS: tuple[str, ...] = ("category", "source", "status", "region", "team")
MAX_DAYS = 731
FLOWS = ("filed", "dispatched", "handled", "handled_late", "closed", "on_time")
# the rollup dimension each grouping reads (region and status totals come from the source rows:
# each flow is counted once per dimension, so any flow dimension sums to the same totals)
_FLOW_DIM = {"category": DIM_CATEGORY, "source": DIM_SOURCE, "team": DIM_TEAM, "region": DIM_SOURCE, "status": DIM_SOURCE}
_CASE_COLUMN = {"category": Case.category, "source": Case.source, "region": Case.region, "status": Case.status}


_TEAM_NAMES = select(Team.id, Team.name)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _metrics(flows: list[int], overdue_open: int) -> dict[str, Any]:
    out: dict[str, Any] = dict(zip(FLOWS, flows, strict=True))
    out["overdue_open"] = overdue_open
    out["overdue"] = out["handled_late"] + overdue_open
    out["closure_rate"] = _rate(out["closed"], out["filed"])
    out["on_time_rate"] = _rate(out["on_time"], out["closed"])
    return out


def parse_day(text: str, field: str) -> date:
    """A YYYY-MM-DD date; Invalid(field) otherwise."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise Invalid(field, "a date YYYY-MM-DD") from exc


@cache
def _statements(group_by: str, dialect: str) -> tuple[Rows, Rows, Rows]:
    """The flows, status and overdue queries of a grouping, built once per database kind; their
    parameters are access.region_params(viewer), `start` and `end` (days), and `lo` and `before`
    (the instants between which a running clock's deadline makes the case overdue now)."""
    dim = _FLOW_DIM[group_by]
    first, last = bindparam("start", type_=Date()), bindparam("end", type_=Date())
    # folded counters plus the journal not folded yet: exact now. The viewer's area sums (one row
    # per day and key) unless the groups are the regions below the viewer's
    area = area_rows().c
    if group_by == "region":
        stat = rollup_rows().c
        key_col = stat.region
        in_scope = [stat.dim == dim, stat.day >= first, stat.day <= last, region_filter_bound(stat.region)]
    else:
        stat, key_col = area, area.key
        in_scope = [stat.dim == dim, stat.day >= first, stat.day <= last]
    # the sums per day and per group in one round trip (rows with no group are days, rows with no
    # day groups): a city's month of team counters is 1,440 rows, summed here to 30 + 48. SQLite
    # has no GROUPING SETS; on PostgreSQL the UNION's two scans were costed high enough to start
    # parallel workers (EXPLAIN ANALYZE: 5-7 ms, against 0.65 ms for one GROUPING SETS scan)
    sums = [func.sum(stat[m]) for m in FLOWS]
    flows_q: Rows
    if dialect == "postgresql":
        flows_q = (
            select(stat.day, key_col, *sums)
            .where(*in_scope)
            .group_by(func.grouping_sets(tuple_(stat.day), tuple_(key_col)))
        )
    else:
        flows_q = union_all(
            select(stat.day, null().label("key"), *sums).where(*in_scope).group_by(stat.day),
            select(null(), key_col, *sums).where(*in_scope).group_by(key_col),
        )
    status_q = (
        select(area.key, func.sum(area.current))
        .where(area.dim == DIM_STATUS, area.day >= first, area.day <= last)
        .group_by(area.key)
    )
    group_col = Case.team_id if group_by == "team" else _CASE_COLUMN[group_by]
    overdue_q = (
        select(group_col, func.count())
        .where(
            literal_in(Case.status, CLOCK_RUNNING),  # the partial index's predicate (it covers the groups)
            Case.deadline_at < bindparam("before", type_=UtcDateTime()),
            Case.deadline_at >= bindparam("lo", type_=UtcDateTime()),
            region_filter_bound(Case.region),
        )
        .group_by(group_col)
    )
    return flows_q, status_q, overdue_q


class StatsService(ServiceCore):
    """Statistics for commanders, duty officers and admins, scoped to their region."""

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _range(self, start: date | None, end: date | None) -> tuple[date, date]:
        today = self.now().astimezone(self._tz()).date()
        end = end or today
        start = start or end - timedelta(days=29)
        if start > end:
            raise Invalid("from", "must not be after `to`")
        if (end - start).days + 1 > MAX_DAYS:
            raise Invalid("from", f"a range of at most {MAX_DAYS} days")
        return start, end

    def _instants(self, start: date, end: date) -> tuple[datetime, datetime]:
        """The first instant of `start` and of the day after `end`, in the hub's time zone, as UTC."""
        tz = self._tz()
        return (
            datetime.combine(start, time(0), tz).astimezone(UTC),
            datetime.combine(end + timedelta(days=1), time(0), tz).astimezone(UTC),
        )

    async def case_stats(
        self, viewer: Viewer, *, start: date | None = None, end: date | None = None, group_by: str = "category"
    ) -> dict[str, Any]:
        """Counters for the cases of the viewer's region over the days `start`..`end` (inclusive,
        hub time zone; default the last 30 days), per group and in total, with a daily series."""
        require_role(viewer, "admin", "commander", "duty")
        if group_by not in GROUPS:
            raise Invalid("group_by", f"one of {', '.join(GROUPS)}")
        start, end = self._range(start, end)
        lo, hi = self._instants(start, end)
        flows_q, status_q, overdue_q = _statements(group_by, self.engine.dialect.name)
        params = {**region_params(viewer), "start": start, "end": end, "lo": lo, "before": min(self.now(), hi)}
        async with self.read_connection() as conn, reader(conn) as fetch:
            flow_rows = await fetch(flows_q, params)
            status_rows = await fetch(status_q, params)
            overdue_rows = await fetch(overdue_q, params)
            team_names: dict[int, str] = {}
            if group_by == "team":
                team_names = {row.id: row.name for row in await fetch(_TEAM_NAMES, {})}

        def key_of(value: Any) -> str:
            if group_by == "team":
                return NO_TEAM if value is None else str(value)
            return str(value)

        per_group: dict[str, list[int]] = defaultdict(lambda: [0] * len(FLOWS))
        per_day: dict[date, list[int]] = {}
        for day, key, *counts in flow_rows:
            if day is None:
                per_group[key_of(key)] = [int(n or 0) for n in counts]
            else:
                per_day[day] = [int(n or 0) for n in counts]
        overdue = {key_of(k): int(n) for k, n in overdue_rows}
        by_status = {str(k): int(n or 0) for k, n in status_rows if int(n or 0) != 0}
        totals = [sum(g[i] for g in per_group.values()) for i in range(len(FLOWS))]

        groups: list[dict[str, Any]]
        if group_by == "status":
            groups = [{"key": k, "name": k, "cases": n, "overdue_open": overdue.get(k, 0)} for k, n in by_status.items()]
            groups.sort(key=lambda g: -int(g["cases"]))
        else:
            groups = []
            for key in set(per_group) | set(overdue):
                item: dict[str, Any] = {"key": key, "name": key, **_metrics(per_group[key], overdue.get(key, 0))}
                if group_by == "team":
                    item["name"] = team_names.get(int(key), key) if key != NO_TEAM else None
                groups.append(item)
            groups.sort(key=lambda g: (-int(g["filed"]), -int(g["closed"]), str(g["key"])))
        daily: list[dict[str, Any]] = []
        for i in range((end - start).days + 1):
            day = start + timedelta(days=i)
            counts = per_day.get(day, [0] * len(FLOWS))
            daily.append({"day": day.isoformat(), **dict(zip(FLOWS, counts, strict=True))})
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "group_by": group_by,
            "timezone": self.timezone,
            "region": viewer["region"],
            "totals": _metrics(totals, sum(overdue.values())),
            "by_status": by_status,
            "groups": groups,
            "daily": daily,
        }

    async def top_problems(
        self, viewer: Viewer, *, start: date | None = None, end: date | None = None, limit: int = 10
    ) -> dict[str, Any]:
        """The problems that keep coming back: cases filed in the range grouped by category and
        place (the camera, or the written location when no camera saw it), at least twice."""
        require_role(viewer, "admin", "commander", "duty")
        if not 1 <= limit <= 100:
            raise Invalid("limit", "between 1 and 100")
        start, end = self._range(start, end)
        lo, hi = self._instants(start, end)
        place = case((Case.camera_id.is_(None), Case.location), else_=None)
        count = func.count()
        query = (
            select(
                Case.category,
                Case.camera_id,
                place,
                count,
                func.sum(case((Case.status.in_(FINISHED), 0), else_=1)),
                func.max(Case.created_at),
                func.min(Case.location),
                func.max(Case.id),
            )
            .where(Case.created_at >= lo, Case.created_at < hi, region_filter(Case.region, viewer))
            .group_by(Case.category, Case.camera_id, place)
            .having(count >= 2)
            .order_by(count.desc(), func.max(Case.created_at).desc())
            .limit(limit)
        )
        async with self.read_session() as session:
            rows = (await session.execute(query)).all()
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "problems": [
                {
                    "category": category,
                    "camera_id": camera_id,
                    "location": location,
                    "cases": int(n),
                    "open": int(still_open or 0),
                    "last_at": last.timestamp() if last is not None else None,
                    "last_case_id": last_id,
                }
                for category, camera_id, _place, n, still_open, last, location, last_id in rows
            ],
        }
