"""One workflow transition as a unit of work on plain statements, without the ORM session.

A transition reads its case and what hangs off it (stage clock, tasks with their teams, extension
requests, attachments, the timeline) in a few Core statements and builds them as transient ORM
objects: the step changes those in memory, as it would changes loaded ones. The unit then writes
only what changed: the case first, guarded by the version it was read at (a concurrent writer
makes it match no row: `Stale`), then the clock, the tasks, extension requests and attachments the
step changed or added, the new timeline entry and its statistics journal rows (rollup.py).

Why not the session: its identity map, loader strategies and flush cost ~7 ms of Python per
transition on a 2-core box, most of a transition's time; this path costs ~2 ms. On PostgreSQL
the unit reads in one statement (the collections as JSON arrays) and writes in one (data-
modifying CTEs behind the guarded case UPDATE), so a transition is three round trips with the
pool's ping; elsewhere (SQLite) it runs the same reads and writes as plain Core statements in a
BEGIN IMMEDIATE transaction.

The objects never enter a session: nothing lazy-loads behind a step's back (an attribute the load
did not set reads None), and nothing is written that this module does not name. A step that needs
the id of a row it adds before the timeline entry is hashed (an extension request, a photo) asks
`new_id`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import JSON, Dialect, Select, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fusionhub.dispatch.calendar import OVERRIDE_ROWS, calendar_fingerprint
from fusionhub.dispatch.db import Rows, compiled_sql, driver_args, driver_connection, uses_asyncpg
from fusionhub.dispatch.models import (
    Attachment,
    Base,
    Case,
    CaseClock,
    CaseEvent,
    CaseExtension,
    CaseStatDelta,
    DispatchRule,
    Task,
    Team,
    User,
    UtcDateTime,
)
from fusionhub.dispatch.rollup import CaseFacts, event_deltas, journal_rows
from fusionhub.dispatch.rules import pick_rule
from fusionhub.dispatch.timeline import GENESIS, entry_values
from fusionhub.dispatch.views import case_dict, event_view
from fusionhub.dispatch.worktime import WorkCalendar

if TYPE_CHECKING:
    from fusionhub.dispatch.cases import CaseService


# a case's row, then its tasks (with team), extension requests, attachments and timeline rows
Loaded = tuple[Sequence[Any], Sequence[Sequence[Any]], Sequence[Sequence[Any]], Sequence[Sequence[Any]], Sequence[Sequence[Any]]]


class Stale(Exception):
    """The case changed after it was read (its version moved on): nothing was written."""


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


CASES, CLOCKS, TASKS, EXTENSIONS, ATTACHMENTS, EVENTS, TEAMS, USERS = (
    _table(m) for m in (Case, CaseClock, Task, CaseExtension, Attachment, CaseEvent, Team, User)
)
CASE_COLS = tuple(c.key for c in CASES.columns)
CLOCK_COLS = tuple(c.key for c in CLOCKS.columns)
TASK_COLS = tuple(c.key for c in TASKS.columns)
EXTENSION_COLS = tuple(c.key for c in EXTENSIONS.columns)
ATTACHMENT_COLS = tuple(c.key for c in ATTACHMENTS.columns)
RULES = _table(DispatchRule)
RULE_COLS = tuple(c.key for c in RULES.columns)
# what a step and the timeline show of a person (never the password hash)
USER_COLS = ("id", "username", "display_name", "role", "region", "team_id")
TEAM_COLS = ("id", "name", "region")
EVENT_COLS = ("seq", "at", "actor_id", "action", "from_status", "to_status", "note", "data", "hash")
ACTOR_COLS = ("username", "display_name", "role")


@functools.cache
def _case_statement() -> Select[Any]:
    """The case, its clock, its team and the acting user (bound: case_id, actor_id) in one row,
    with the calendar overrides' fingerprint."""
    actor = USERS.alias("actor")
    return (
        select(
            *CASES.columns,
            *CLOCKS.columns,
            *(TEAMS.c[n] for n in TEAM_COLS),
            *(actor.c[n] for n in USER_COLS),
            calendar_fingerprint(),
        )
        .select_from(
            CASES.outerjoin(CLOCKS, CLOCKS.c.case_id == CASES.c.id)
            .outerjoin(TEAMS, TEAMS.c.id == CASES.c.team_id)
            .outerjoin(actor, actor.c.id == bindparam("actor_id"))
        )
        .where(CASES.c.id == bindparam("case_id"))
    )


@functools.cache
def _tasks_statement() -> Select[Any]:
    return (
        select(*TASKS.columns, *(TEAMS.c[n] for n in TEAM_COLS))
        .join(TEAMS, TEAMS.c.id == TASKS.c.team_id)
        .where(TASKS.c.case_id == bindparam("case_id"))
        .order_by(TASKS.c.id)
    )


@functools.cache
def _children_statement(table: Table) -> Select[Any]:
    return select(*table.columns).where(table.c.case_id == bindparam("case_id")).order_by(table.c.id)


@functools.cache
def _events_statement() -> Select[Any]:
    return (
        select(*(EVENTS.c[n] for n in EVENT_COLS), *(USERS.c[n] for n in ACTOR_COLS))
        .outerjoin(USERS, USERS.c.id == EVENTS.c.actor_id)
        .where(EVENTS.c.case_id == bindparam("case_id"))
        .order_by(EVENTS.c.seq)
    )


@functools.cache
def _new_id_statement(table: Table, dialect: str) -> Select[Any]:
    if dialect == "postgresql":
        return select(func.nextval(func.pg_get_serial_sequence(table.name, "id")))
    # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so max + 1 is ours
    return select(func.coalesce(func.max(table.c.id), 0) + 1)


def _json_list(table: Table, columns: Sequence[Any], order: Any, where: Any, joined: Any = None) -> Any:
    """A scalar subquery: the rows as one JSON array of arrays (PostgreSQL), in `order`."""
    source = joined if joined is not None else table
    return (
        select(func.json_agg(aggregate_order_by(func.json_build_array(*columns), order)))
        .select_from(source)
        .where(where)
        .scalar_subquery()
    )


@functools.cache
def _pg_load_statement() -> Select[Any]:
    """`_case_statement` with the case's tasks, extension requests, attachments and timeline as
    JSON arrays in the same row: one round trip instead of five."""
    task_cols = [*TASKS.columns, *(TEAMS.c[n] for n in TEAM_COLS)]
    event_cols = [*(EVENTS.c[n] for n in EVENT_COLS), *(USERS.c[n] for n in ACTOR_COLS)]
    return _case_statement().add_columns(
        _json_list(TASKS, task_cols, TASKS.c.id, TASKS.c.case_id == CASES.c.id,
                   TASKS.join(TEAMS, TEAMS.c.id == TASKS.c.team_id)),
        _json_list(EXTENSIONS, list(EXTENSIONS.columns), EXTENSIONS.c.id, EXTENSIONS.c.case_id == CASES.c.id),
        _json_list(ATTACHMENTS, list(ATTACHMENTS.columns), ATTACHMENTS.c.id, ATTACHMENTS.c.case_id == CASES.c.id),
        _json_list(EVENTS, event_cols, EVENTS.c.seq, EVENTS.c.case_id == CASES.c.id,
                   EVENTS.outerjoin(USERS, USERS.c.id == EVENTS.c.actor_id)),
    )


def _time_positions(columns: Sequence[Any]) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(columns) if isinstance(c.type, UtcDateTime))


_TASK_TIMES = _time_positions([*TASKS.columns, *(TEAMS.c[n] for n in TEAM_COLS)])
_EXTENSION_TIMES = _time_positions(list(EXTENSIONS.columns))
_ATTACHMENT_TIMES = _time_positions(list(ATTACHMENTS.columns))
_EVENT_TIMES = _time_positions([EVENTS.c[n] for n in EVENT_COLS])


def _json_rows(value: Any, times: tuple[int, ...]) -> list[list[Any]]:
    """Rows from a JSON array of arrays; the timestamps (ISO text in JSON) back to aware UTC."""
    if value is None:
        return []
    rows = value if isinstance(value, list) else json.loads(value)
    for row in rows:
        for i in times:
            if row[i] is not None:
                row[i] = datetime.fromisoformat(row[i]).astimezone(UTC)
    return rows


@functools.cache
def _team_statement() -> Select[Any]:
    return select(*(TEAMS.c[n] for n in TEAM_COLS)).where(TEAMS.c.id == bindparam("id"))


@functools.cache
def _user_statement() -> Select[Any]:
    return select(*(USERS.c[n] for n in USER_COLS)).where(USERS.c.id == bindparam("id"))


@functools.cache
def _rules_statement() -> Select[Any]:
    """Every auto-dispatch rule with its team and named person (a centre keeps dozens: pick_rule
    chooses among them in Python, as the rules page shows them)."""
    return (
        select(*RULES.columns, *(TEAMS.c[n] for n in TEAM_COLS), *(USERS.c[n] for n in USER_COLS))
        .select_from(RULES.join(TEAMS, TEAMS.c.id == RULES.c.team_id).outerjoin(USERS, USERS.c.id == RULES.c.user_id))
        .order_by(RULES.c.position, RULES.c.id)
    )


def _build(model: type[Any], names: Sequence[str], values: Sequence[Any]) -> Any:
    """A transient instance holding the values as loaded: written straight into its state, as the
    ORM's own loading does (no attribute events, no history; the unit keeps its own, _Tracked)."""
    obj = model.__mapper__.class_manager.new_instance()
    obj.__dict__.update(zip(names, values, strict=True))
    return obj


def _event_dict(row: Sequence[Any]) -> dict[str, Any]:
    """`Event` of the API from a row of `_events_statement`."""
    event = SimpleNamespace(**dict(zip(EVENT_COLS, row[: len(EVENT_COLS)], strict=True)))
    username, display_name, role = row[len(EVENT_COLS) :]
    actor = None
    if event.actor_id is not None and username is not None:
        actor = SimpleNamespace(id=event.actor_id, username=username, display_name=display_name, role=role)
    return event_view(event, actor)


class _Tracked:
    """A loaded row and its column values as read: what changed is what differs now."""

    __slots__ = ("before", "cols", "obj", "table")

    def __init__(self, obj: Any, table: Table, cols: Sequence[str]) -> None:
        self.obj, self.table, self.cols = obj, table, cols
        state = obj.__dict__
        self.before = tuple(state.get(c) for c in cols)

    def changes(self) -> dict[str, Any]:
        state = self.obj.__dict__
        out: dict[str, Any] = {}
        for col, old in zip(self.cols, self.before, strict=True):
            new = state.get(col)
            if new is not old and new != old:
                out[col] = new
        return out


@dataclass(slots=True)
class Op:
    """One write: an UPDATE of `values` where `key` matches (the first op of a unit is the case's,
    guarded by its version), else an INSERT of `values` and of the rows in `more` (same columns);
    `target` gets the id the database assigns to the inserted row."""

    table: Table
    values: dict[str, Any]
    key: dict[str, Any] | None = None
    more: list[dict[str, Any]] = field(default_factory=list)
    target: Any = None


class CoreIO:
    """A unit's statements through SQLAlchemy Core on a connection in a transaction (any database)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    async def rows(self, stmt: Rows, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return (await self.conn.execute(stmt, params)).all()

    async def load(self, case_id: int, actor_id: int) -> Loaded | None:
        """The case's row (with clock, team, actor, fingerprint) and its tasks, extension requests,
        attachments and timeline: a statement each."""
        found = await self.rows(_case_statement(), {"case_id": case_id, "actor_id": actor_id})
        if not found:
            return None
        params = {"case_id": case_id}
        return (
            found[0],
            await self.rows(_tasks_statement(), params),
            await self.rows(_children_statement(EXTENSIONS), params),
            await self.rows(_children_statement(ATTACHMENTS), params),
            await self.rows(_events_statement(), params),
        )

    async def scalar(self, stmt: Select[Any]) -> Any:
        return (await self.conn.execute(stmt)).scalar_one()

    async def apply(self, ops: Sequence[Op]) -> list[int] | None:
        """Run the writes in order; None (and nothing more run) if the first, guarded, matched no row.
        Returns the ids assigned to the ops with a target."""
        ids: list[int] = []
        for n, op in enumerate(ops):
            table = op.table
            if op.key is not None:
                where = [table.c[k] == v for k, v in op.key.items()]
                result = await self.conn.execute(update(table).where(*where).values(**op.values))
                if n == 0 and result.rowcount != 1:
                    return None
            elif op.target is not None:
                ids.append(int((await self.conn.execute(insert(table).values(**op.values).returning(table.c.id))).scalar_one()))
            else:
                await self.conn.execute(insert(table), [op.values, *op.more])
        return ids


class PgIO:
    """The same statements straight on the asyncpg connection under SQLAlchemy's (PostgreSQL):
    SQL text built once per statement shape, no per-call statement objects, cache keys or
    compilation. Values go as asyncpg takes them (JSON as text, aware datetimes)."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = "postgresql"
        self._sa_dialect = dialect

    async def rows(self, stmt: Rows, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        compiled = compiled_sql(stmt, self._sa_dialect)
        return await self.raw.fetch(compiled[0], *driver_args(compiled, params))

    async def load(self, case_id: int, actor_id: int) -> Loaded | None:
        """As CoreIO.load in one round trip: the collections come as JSON arrays of rows."""
        found = await self.rows(_pg_load_statement(), {"case_id": case_id, "actor_id": actor_id})
        if not found:
            return None
        row = tuple(found[0])
        lists = row[-4:]
        return (
            row[:-4],
            _json_rows(lists[0], _TASK_TIMES),
            _json_rows(lists[1], _EXTENSION_TIMES),
            _json_rows(lists[2], _ATTACHMENT_TIMES),
            _json_rows(lists[3], _EVENT_TIMES),
        )

    async def scalar(self, stmt: Select[Any]) -> Any:
        compiled = compiled_sql(stmt, self._sa_dialect)
        return await self.raw.fetchval(compiled[0], *driver_args(compiled, {}))

    async def apply(self, ops: Sequence[Op]) -> list[int] | None:
        """All the writes as one statement (data-modifying CTEs, each after the guarded case
        UPDATE): atomic by itself, one round trip. None if the guard matched no row (then nothing
        was written); else the ids assigned to the ops with a target."""
        sql = _unit_sql(tuple(_shape(op) for op in ops))
        args: list[Any] = []
        for op in ops:
            if op.key is not None:
                args += _args(op.table, op.values)
                args += op.key.values()
            else:
                for row in (op.values, *op.more):
                    args += _args(op.table, row)
        row = await self._run(self.raw.fetchrow, sql, *args)
        if row[0] != 1:
            return None
        return [int(v) for v in row[1:]]

    @staticmethod
    async def _run(call: Any, *args: Any) -> Any:
        try:
            return await call(*args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            # a concurrent writer took the timeline's next seq first, or a row referred to is gone
            raise Stale(str(exc)) from exc


Shape = tuple[str, tuple[str, ...], tuple[str, ...], int, bool]  # table, columns, key, rows, returning


def _shape(op: Op) -> Shape:
    key = tuple(op.key) if op.key is not None else ()
    return op.table.name, tuple(op.values), key, 1 + len(op.more), op.target is not None


@functools.cache
def _pg_types(table: str) -> dict[str, str]:
    """Each column's type as PostgreSQL spells it: every parameter is cast, so that an INSERT fed
    by a SELECT types its values as the columns do. Without a length: a cast to VARCHAR(16) would
    cut a longer value short without a word, where the column itself refuses it."""
    dialect = postgresql.dialect()
    out = {}
    for column in Base.metadata.tables[table].columns:
        spelled = column.type.compile(dialect=dialect)
        out[column.key] = spelled.partition("(")[0] if spelled.startswith("VARCHAR(") else spelled
    return out


@functools.cache
def _unit_sql(shapes: tuple[Shape, ...]) -> str:
    """The SQL of PgIO.apply for a sequence of op shapes (cached: a few dozen shapes in all)."""
    quote = postgresql.dialect().identifier_preparer.quote
    n = 0

    def mark(table: str, column: str) -> str:
        nonlocal n
        n += 1
        return f"${n}::{_pg_types(table)[column]}"

    parts: list[str] = []
    returned: list[str] = []
    for i, (table, columns, key, rows, returning) in enumerate(shapes):
        name, target = f"w{i}", quote(table)
        if key:
            sets = ", ".join(f"{quote(c)} = {mark(table, c)}" for c in columns)
            where = " AND ".join(f"{quote(c)} = {mark(table, c)}" for c in key)
            if i == 0:
                parts.append(f"{name} AS (UPDATE {target} SET {sets} WHERE {where} RETURNING 1)")
            else:
                parts.append(f"{name} AS (UPDATE {target} SET {sets} WHERE {where} AND EXISTS (SELECT FROM w0))")
            continue
        selects = []
        for _ in range(rows):
            selects.append("SELECT " + ", ".join(mark(table, c) for c in columns) + " FROM w0")
        names = ", ".join(quote(c) for c in columns)
        tail = " RETURNING id" if returning else ""
        parts.append(f"{name} AS (INSERT INTO {target} ({names}) {' UNION ALL '.join(selects)}{tail})")
        if returning:
            returned.append(f"(SELECT id FROM {name})")
    return "WITH " + ", ".join(parts) + " SELECT " + ", ".join(["(SELECT count(*) FROM w0)", *returned])


@functools.cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.key for c in table.columns if isinstance(c.type, JSON))


def _args(table: Table, values: dict[str, Any]) -> list[Any]:
    """Values in the form asyncpg takes them: JSON as text; datetimes must be aware (the columns
    are UtcDateTime, which refuses naive ones on every path)."""
    json_cols = _json_columns(table)
    out: list[Any] = []
    for name, value in values.items():
        if name in json_cols:
            value = json.dumps(value)
        elif isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("naive datetime: dispatch stores aware UTC times only")
        out.append(value)
    return out


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[CoreIO | PgIO]:
    """A connection for one unit. On PostgreSQL (asyncpg) the driver connection without BEGIN:
    each read takes its own snapshot (READ COMMITTED would give no more inside a transaction)
    and the writes are one statement, atomic by itself, guarded by the case version the reads
    saw. Elsewhere a Core transaction (BEGIN IMMEDIATE on SQLite), committed when the block ends.
    Either way nothing is written if the block raises."""
    if uses_asyncpg(engine):
        async with engine.connect() as conn, driver_connection(conn) as raw:
            yield PgIO(raw, engine.dialect)
    else:
        async with engine.begin() as conn:
            yield CoreIO(conn)


class Unit:
    """A transition's case as loaded, what a step may ask for while it runs, and the write."""

    def __init__(self, service: CaseService, io: CoreIO | PgIO) -> None:
        self.service = service
        self.io = io
        self.case: Case | None = None
        self.actor: User | None = None
        self.fingerprint: Any = None
        self.timeline: list[dict[str, Any]] = []
        self.prior: list[tuple[str, datetime]] = []
        self._version = 0
        self._team: Team | None = None
        self._tracked: dict[int, _Tracked] = {}  # id(obj) -> its row as read
        self._event: dict[str, Any] | None = None

    # -- reading --------------------------------------------------------------------------------

    async def load(self, case_id: int, actor_id: int) -> None:
        """Read the case with everything a step and the reply need (case None: no such case)."""
        found = await self.io.load(case_id, actor_id)
        if found is None:
            return
        row, task_rows, extension_rows, attachment_rows, event_rows = found
        n_case, n_clock, n_team = len(CASE_COLS), len(CLOCK_COLS), len(TEAM_COLS)
        values = tuple(row)
        at = 0
        case_values = values[at : at + n_case]
        at += n_case
        clock_values = values[at : at + n_clock]
        at += n_clock
        team_values = values[at : at + n_team]
        at += n_team
        user_values = values[at : at + len(USER_COLS)]
        self.fingerprint = (values[-1],)  # None: no override at all
        self.actor = _build(User, USER_COLS, user_values) if user_values[0] is not None else None
        teams: dict[int, Team] = {}
        team = self._team_of(teams, team_values)
        clock = _build(CaseClock, CLOCK_COLS, clock_values) if clock_values[0] is not None else None
        tasks = []
        for task_row in task_rows:
            task = _build(Task, TASK_COLS, task_row[: len(TASK_COLS)])
            task.__dict__["team"] = self._team_of(teams, task_row[len(TASK_COLS) :])
            tasks.append(task)
        extensions = [_build(CaseExtension, EXTENSION_COLS, r) for r in extension_rows]
        attachments = [_build(Attachment, ATTACHMENT_COLS, r) for r in attachment_rows]
        for event_row in event_rows:
            self.timeline.append(_event_dict(event_row))
            self.prior.append((event_row[5], event_row[1]))
        case = _build(Case, CASE_COLS, case_values)
        # relationships as loaded, like the columns: plain lists (a step's append needs no events)
        case.__dict__.update(team=team, clock=clock, tasks=tasks, extensions=extensions, attachments=attachments)
        self.case, self._team, self._version = case, team, case.version
        self._track(case, CASES, CASE_COLS)
        if clock is not None:
            self._track(clock, CLOCKS, CLOCK_COLS)
        for task in tasks:
            self._track(task, TASKS, TASK_COLS)
        for ext in extensions:
            self._track(ext, EXTENSIONS, EXTENSION_COLS)
        for att in attachments:
            self._track(att, ATTACHMENTS, ATTACHMENT_COLS)

    @staticmethod
    def _team_of(teams: dict[int, Team], values: Sequence[Any]) -> Team | None:
        if values[0] is None:
            return None
        found = teams.get(values[0])
        if found is None:
            found = teams[values[0]] = _build(Team, TEAM_COLS, values)
        return found

    def _track(self, obj: Any, table: Table, cols: Sequence[str]) -> None:
        self._tracked[id(obj)] = _Tracked(obj, table, cols)

    # Whatever a step reads goes through the unit's own connection: a unit that took a second one
    # from the pool while holding its first could wait forever once a burst of units held them all.

    async def calendar(self) -> WorkCalendar:
        """The working calendar, reused while the overrides' fingerprint read with the case holds;
        otherwise built from the overrides read now (after the fingerprint, as the cache requires)."""
        return await self.service.work_calendar(
            fingerprint=self.fingerprint, overrides=lambda: self.io.rows(OVERRIDE_ROWS, {})
        )

    async def team(self, team_id: int) -> Team | None:
        rows = await self.io.rows(_team_statement(), {"id": team_id})
        return _build(Team, TEAM_COLS, tuple(rows[0])) if rows else None

    async def user(self, user_id: int) -> User | None:
        rows = await self.io.rows(_user_statement(), {"id": user_id})
        return _build(User, USER_COLS, tuple(rows[0])) if rows else None

    async def rule(self, category: str, region: str) -> DispatchRule | None:
        """The auto-dispatch rule for a case of `category` in `region` (team and user loaded)."""
        n_rule, n_team = len(RULE_COLS), len(TEAM_COLS)
        rules = []
        for row in await self.io.rows(_rules_statement(), {}):
            values = tuple(row)
            rule = _build(DispatchRule, RULE_COLS, values[:n_rule])
            user = values[n_rule + n_team :]
            rule.__dict__.update(
                team=_build(Team, TEAM_COLS, values[n_rule : n_rule + n_team]),
                user=_build(User, USER_COLS, user) if user[0] is not None else None,
            )
            rules.append(rule)
        return pick_rule(rules, category, region)

    async def new_id(self, model: type[Base]) -> int:
        """An id for a row of `model` the step adds (written with this unit)."""
        return int(await self.io.scalar(_new_id_statement(_table(model), self.io.dialect)))

    # -- writing --------------------------------------------------------------------------------

    def append(
        self, *, actor: User, action: str, from_status: str | None, to_status: str, at: datetime,
        note: str | None, data: dict[str, Any],
    ) -> None:
        """The new timeline entry, chained onto the case's head."""
        case = self.case
        assert case is not None
        values = entry_values(
            case_id=case.id,
            prev=case.timeline_head or GENESIS,
            seq=len(self.timeline) + 1,
            actor_id=actor.id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            at=at,
            note=note,
            data=dict(data),
        )
        case.timeline_head = values["hash"]
        self._event = values
        self.timeline.append(event_view(SimpleNamespace(**values), actor))

    async def write(self, tz: tzinfo) -> None:
        """Write what the step changed, the case first (Stale if its version moved on: then
        nothing is written)."""
        case, event = self.case, self._event
        assert case is not None and event is not None
        team = case.__dict__.get("team")
        if team is not self._team:
            case.team_id = team.id if team is not None else None
        changes = self._tracked[id(case)].changes()
        changes["version"] = self._version + 1
        ops = [Op(CASES, changes, key={"id": case.id, "version": self._version})]
        if case.clock is not None:
            self._save(ops, case.clock, CLOCKS, CLOCK_COLS, case.id)
        for task in case.tasks:
            if task.__dict__.get("team") is not None:
                task.team_id = task.team.id
            self._save(ops, task, TASKS, TASK_COLS, case.id)
        for ext in case.extensions:
            self._save(ops, ext, EXTENSIONS, EXTENSION_COLS, case.id)
        for att in case.attachments:
            self._save(ops, att, ATTACHMENTS, ATTACHMENT_COLS, case.id)
        ops.append(Op(EVENTS, event))
        facts = CaseFacts(
            region=case.region,
            source=case.source,
            category=case.category,
            team_id=case.team_id,
            created_at=case.created_at,
            deadline_at=case.deadline_at,
        )
        rows = journal_rows(event_deltas(
            facts, at=event["at"], from_status=event["from_status"], to_status=event["to_status"],
            prior=self.prior, tz=tz,
        ))
        if rows:
            ops.append(Op(_table(CaseStatDelta), rows[0], more=rows[1:]))
        ids = await self.io.apply(ops)
        if ids is None:
            raise Stale(f"case {case.id} changed after it was read")
        case.version = self._version + 1
        for op, new_id in zip((op for op in ops if op.target is not None), ids, strict=True):
            op.target.id = new_id

    def _save(self, ops: list[Op], obj: Any, table: Table, cols: Sequence[str], case_id: int) -> None:
        tracked = self._tracked.get(id(obj))
        if tracked is not None:
            changes = tracked.changes()
            if changes:
                ops.append(Op(table, changes, key={"id": obj.id}))
            return
        obj.case_id = case_id
        state = obj.__dict__
        values = {c: state.get(c) for c in cols if c != "id" or state.get("id") is not None}
        # an id the step took with new_id is written as given; otherwise the database assigns one
        ops.append(Op(table, values, target=obj if state.get("id") is None else None))

    # -- the reply ------------------------------------------------------------------------------

    def case_reply(self) -> dict[str, Any]:
        """`Case` of the API as written, timeline included."""
        assert self.case is not None
        out = case_dict(self.case, timeline=False)
        out["timeline"] = list(self.timeline)
        return out
