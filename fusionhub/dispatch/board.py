"""The board's lists (cases, overdue cases, a team's inbox) read as Core rows, not ORM objects.

At city scale the SQL of a 50-row list takes about a millisecond; building 50 case objects with
their tasks, clocks and attachments through the ORM took three times that. These read only the
columns the list shape needs, as plain rows, and build the same dicts as views.case_dict
(without timeline) and views.task_dict — one query for the cases (team name joined in) and one
per collection keyed by the listed case ids (tasks always; attachments and extension requests
only for the cases that have some).

On PostgreSQL (asyncpg) the statements run straight on the driver (db.reader: SQL text built
once per shape) and each row becomes a named tuple: SQLAlchemy's per-call cache key, execution
machinery and Row objects cost more than the statements themselves (interleaved on 200k cases:
open cases 2.90 -> 1.87 ms p50, a team's inbox 1.15 -> 0.65 ms). The dicts are built by the same
code either way. (Tried and measured slower: PostgreSQL building the list's JSON itself, 2.79 ms:
json_build_object and decoding the JSON cost more than the rows.)
"""

from __future__ import annotations

from collections import defaultdict, namedtuple
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import ARRAY, Integer, Select, any_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fusionhub.dispatch.access import region_filter_bound
from fusionhub.dispatch.clock import clock_dict
from fusionhub.dispatch.db import Fetch, reader
from fusionhub.dispatch.models import (
    CLOCK_RUNNING,
    TASK_OPEN,
    Attachment,
    Case,
    CaseClock,
    CaseExtension,
    Task,
    Team,
    UtcDateTime,
    literal_in,
)
from fusionhub.dispatch.views import attachment_dict, case_fields, extension_dict, intake_fields, task_fields

_Rows = Select[*tuple[Any, ...]]  # a SELECT of plain columns (rows, not ORM objects)

_CASE_COLUMNS = (
    Case.id, Case.title, Case.status, Case.source, Case.category, Case.camera_id, Case.zone_id, Case.region,
    Case.location, Case.flag_id, Case.team_id, Case.deadline_at, Case.created_at, Case.updated_at,
    Case.description, Case.contact, Case.reported_by, Case.suspended_from, Case.satisfaction,
)
_TASK_COLUMNS = (
    Task.id, Task.case_id, Task.team_id, Task.status, Task.deadline_at, Task.created_at, Task.acknowledged_at,
    Task.acknowledged_by, Task.done_at, Task.assignee_id,
)


_CLOCK_FIELDS = (
    "stage", "limit_type", "limit_amount", "started_at", "warn_at", "due_at", "state", "paused_at", "remaining",
    "reminders", "unanswered", "last_reminder_at", "penalties", "penalized_at",
)


# a listed case's clock columns as one record with the names clock_dict reads (attribute access on
# a named tuple, built from one slice of the row: every filed case has a clock)
_ClockColumns = namedtuple("_ClockColumns", _CLOCK_FIELDS)  # type: ignore[misc]
_CLOCK_AT = len(_CASE_COLUMNS) + 2  # after the case's columns, team_name and clock_id


def _case_query() -> _Rows:
    """The columns of a listed case, its team's name, its clock (one row per case: joined in) and
    whether it has attachments or extension requests (most have none: their queries are then
    skipped); case_statement adds WHERE, ORDER BY and LIMIT."""
    clock = CaseClock.__table__.c
    return (
        select(
            *_CASE_COLUMNS,
            Team.name.label("team_name"),
            clock.id.label("clock_id"),
            *(clock[name].label(f"clock_{name}") for name in _CLOCK_FIELDS),
            exists().where(Attachment.case_id == Case.id).label("has_attachments"),
            exists().where(CaseExtension.case_id == Case.id).label("has_extensions"),
        )
        .outerjoin(Team, Team.id == Case.team_id)
        .outerjoin(CaseClock, CaseClock.case_id == Case.id)
    )


def _task_query() -> _Rows:
    """The columns of a listed task, its team's name and its case's title, status and region."""
    return (
        select(*_TASK_COLUMNS, Team.name.label("team_name"), Case.title.label("case_title"),
               Case.status.label("case_status"), Case.region.label("case_region"))
        .join(Case, Task.case_id == Case.id)
        .join(Team, Team.id == Task.team_id)
    )


# the rows of the listed cases: PostgreSQL takes the ids as one array parameter (an IN list is
# rendered afresh for every call, fifty placeholders each time); SQLite has no arrays
def _of_cases(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(Integer)))
    return column.in_(bindparam("ids", expanding=True))


@cache
def _case_tasks(dialect: str) -> _Rows:
    return (
        select(*_TASK_COLUMNS, Team.name.label("team_name")).join(Team, Team.id == Task.team_id)
        .where(_of_cases(Task.case_id, dialect)).order_by(Task.id)
    )


@cache
def _children(model: type[Attachment] | type[CaseExtension], dialect: str) -> _Rows:
    table = model.__table__
    return select(table).where(_of_cases(table.c.case_id, dialect)).order_by(table.c.id)


# Each list shape is built once (composing forty labelled columns and their joins was about 8 % of
# a list's time); every call only binds its parameters.
@cache
def case_statement(*, status: bool, overdue: bool, field: bool) -> _Rows:
    """The board's case list in the viewer's region, built once per shape; its parameters are
    region_params(viewer), `limit`, and `status` (a status), `now` (overdue: only cases whose stage
    clock ran past its deadline, the longest overdue first), `team_id`, `user_id` (field: only
    their team's cases and those they reported), as the shape asks."""
    query = _case_query().where(region_filter_bound(Case.region))
    if status:
        query = query.where(Case.status == bindparam("status"))
    order: tuple[Any, ...] = (Case.created_at.desc(), Case.id.desc())
    if overdue:
        # the same predicate as the partial index ix_cases_open_deadline, so it is used
        query = query.where(literal_in(Case.status, CLOCK_RUNNING), Case.deadline_at < bindparam("now", type_=UtcDateTime()))
        order = (Case.deadline_at, Case.id)
    if field:
        query = query.where(
            Case.id.in_(select(Task.case_id).where(Task.team_id == bindparam("team_id", type_=Integer())))
            | (Case.reported_by == bindparam("user_id", type_=Integer()))
        )
    return query.order_by(*order).limit(bindparam("limit", type_=Integer()))


@cache
def task_statement(*, open_only: bool, field: bool) -> _Rows:
    """The board's task list in the viewer's region, newest first, built once per shape; its
    parameters are region_params(viewer), `limit` and (field: their team's only) `team_id`.
    `open_only`: pending or acknowledged tasks (a team's inbox)."""
    query = _task_query().where(region_filter_bound(Case.region))
    if field:
        query = query.where(Task.team_id == bindparam("team_id", type_=Integer()))
    if open_only:
        query = query.where(literal_in(Task.status, TASK_OPEN))  # the partial index's predicate
    return query.order_by(Task.created_at.desc(), Task.id.desc()).limit(bindparam("limit", type_=Integer()))


def _task(row: Any, title: str, status: str, region: str) -> dict[str, Any]:
    return task_fields(row, row.team_name, title, status, region)


async def cases(conn: AsyncConnection, params: dict[str, Any], *, status: bool, overdue: bool,
                field: bool) -> list[dict[str, Any]]:
    """The board's case list (case_statement's shapes and parameters) as views.case_dict(
    timeline=False) shows each case."""
    async with reader(conn) as fetch:
        query = case_statement(status=status, overdue=overdue, field=field)
        return await case_list(fetch, conn.dialect.name, query, params)


async def tasks(conn: AsyncConnection, params: dict[str, Any], *, open_only: bool, field: bool) -> list[dict[str, Any]]:
    """The board's task list (task_statement's shapes and parameters) as views.task_dict shows each."""
    async with reader(conn) as fetch:
        rows = await fetch(task_statement(open_only=open_only, field=field), params)
    return [_task(r, r.case_title, r.case_status, r.case_region) for r in rows]


async def case_list(fetch: Fetch, dialect: str, query: _Rows, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a case_statement and return the cases as views.case_dict(timeline=False) would."""
    cases = await fetch(query, params)
    if not cases:
        return []
    tasks: dict[int, list[Any]] = defaultdict(list)
    for row in await fetch(_case_tasks(dialect), {"ids": [c.id for c in cases]}):
        tasks[row.case_id].append(row)
    attachments = await _by_case(fetch, _children(Attachment, dialect), [c.id for c in cases if c.has_attachments])
    extensions = await _by_case(fetch, _children(CaseExtension, dialect), [c.id for c in cases if c.has_extensions])
    out = []
    for c in cases:
        item = case_fields(c, c.team_name)
        item["attachments"] = [attachment_dict(a) for a in attachments.get(c.id, ())]
        item["tasks"] = [_task(t, c.title, c.status, c.region) for t in tasks.get(c.id, ())]
        item.update(intake_fields(c))
        clock = _ClockColumns(*c[_CLOCK_AT : _CLOCK_AT + len(_CLOCK_FIELDS)]) if c.clock_id is not None else None
        item["clock"] = clock_dict(clock)  # type: ignore[arg-type]
        item["extensions"] = [extension_dict(e) for e in extensions.get(c.id, ())]
        out.append(item)
    return out


async def _by_case(fetch: Fetch, stmt: _Rows, ids: Sequence[int]) -> dict[int, list[Any]]:
    """Rows of a per-case collection (all its columns) for the listed cases, in id order."""
    found: dict[int, list[Any]] = defaultdict(list)
    if ids:
        for row in await fetch(stmt, {"ids": list(ids)}):
            found[row.case_id].append(row)
    return found
