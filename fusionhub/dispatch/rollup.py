"""The statistics rollup: daily counters kept in the same transaction as every timeline entry.

Every case transition appends a `CaseEvent`; an `after_flush` hook on the dispatch service's write
sessions turns the new entries into counter deltas (`event_deltas`, pure) and journals them in
`case_stat_deltas` with the entry, so the counters can never disagree with the timelines. The
journal is insert-only: concurrent transitions never queue on the shared counter rows (updating
those in every transition held their locks until COMMIT and serialised every transition of a day
and district behind one WAL flush). `fold` moves the journal into `case_stats` in batches (the
supervisor runs it); `rollup_rows()` reads both, so statistics are exact at every moment.
Statistics over months then read a few thousand rollup rows instead of millions of cases. The fold
also sums the counters into every area above their region (`case_stat_areas`: a region with all
below it), and `area_rows()` reads a district's or the city's figures from there: one row
per day and key whatever the number of regions below.

Counters, by the day (hub time zone) a case *first* reached a stage, for each flow dimension
(source, category, team): filed, dispatched, handled (`handled_late`: after its deadline), closed
(`on_time`: its last handling report came by the deadline, or it had none). The status dimension
keeps, by the day a case was filed, how many of them are in each status now (`current`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, Subquery, bindparam, delete, event, insert, inspect, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from fusionhub.dispatch.access import region_filter_bound
from fusionhub.dispatch.models import Case, CaseEvent, CaseStat, CaseStatArea, CaseStatDelta

FILED, DISPATCHED, HANDLED, CLOSED = "filed", "dispatched", "handled", "closed"
DIM_SOURCE, DIM_CATEGORY, DIM_TEAM, DIM_STATUS = "source", "category", "team", "status"
FLOW_DIMS = (DIM_SOURCE, DIM_CATEGORY, DIM_TEAM)
METRICS = ("filed", "dispatched", "handled", "handled_late", "closed", "on_time", "current")
NO_TEAM = "-"
TZ_KEY = "fusionhub.tz"
# PostgreSQL takes at most 32767 bound parameters per statement: 11 per row
UPSERT_CHUNK = 2000

RowKey = tuple[str, date, str, str]  # (dim, day, region, key)
Deltas = dict[RowKey, list[int]]  # counters in METRICS order


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the rollup needs of a case at the moment of a transition."""

    region: str
    source: str
    category: str
    team_id: int | None
    created_at: datetime
    deadline_at: datetime | None


def local_day(at: datetime, tz: tzinfo) -> date:
    """The calendar day of an instant in the hub's time zone."""
    return at.astimezone(tz).date()


def event_deltas(
    facts: CaseFacts,
    *,
    at: datetime,
    from_status: str | None,
    to_status: str,
    prior: Sequence[tuple[str, datetime]],
    tz: tzinfo,
    into: Deltas | None = None,
) -> Deltas:
    """The counter changes one timeline entry makes; `prior` is the case's earlier entries as
    (to_status, at), oldest first. Adds into `into` when given (for batches)."""
    out: Deltas = into if into is not None else defaultdict(lambda: [0] * len(METRICS))
    reached = {status for status, _ in prior}
    flows = [0] * len(METRICS)
    if to_status not in reached:  # only the first time a case reaches a stage counts
        if to_status == FILED:
            flows[0] = 1
        elif to_status == DISPATCHED:
            flows[1] = 1
        elif to_status == HANDLED:
            flows[2] = 1
            flows[3] = int(facts.deadline_at is not None and at > facts.deadline_at)
        elif to_status == CLOSED:
            flows[4] = 1
            handled_at = next((when for status, when in reversed(prior) if status == HANDLED), None)
            on_time = facts.deadline_at is None or (handled_at is not None and handled_at <= facts.deadline_at)
            flows[5] = int(on_time)
    if any(flows):
        day = local_day(at, tz)
        team = str(facts.team_id) if facts.team_id is not None else NO_TEAM
        for dim, key in ((DIM_SOURCE, facts.source), (DIM_CATEGORY, facts.category), (DIM_TEAM, team)):
            row = out[(dim, day, facts.region, key)]
            for i, n in enumerate(flows):
                row[i] += n
    if from_status != to_status:
        cohort = local_day(facts.created_at, tz)
        if from_status is not None:
            out[(DIM_STATUS, cohort, facts.region, from_status)][6] -= 1
        out[(DIM_STATUS, cohort, facts.region, to_status)][6] += 1
    return out


def journal_rows(deltas: Mapping[RowKey, Sequence[int]]) -> list[dict[str, Any]]:
    """The case_stat_deltas rows of deltas written without the ORM session (the after-flush hook
    journals the same for entries the session writes)."""
    return _rows(deltas)


def _insert_for(dialect: str) -> Any:
    if dialect == "postgresql":
        return pg_insert
    if dialect == "sqlite":
        return sqlite_insert
    raise ValueError(f"the statistics rollup does not support {dialect}")


def _rows(deltas: Mapping[RowKey, Sequence[int]], place: str = "region") -> list[dict[str, Any]]:
    """The non-zero deltas as rows of case_stats / case_stat_deltas (`place`: the column the
    region goes in; case_stat_areas calls it area), in key order."""
    return [
        {"dim": k[0], "day": k[1], place: k[2], "key": k[3], **dict(zip(METRICS, v, strict=True))}
        for k, v in sorted(deltas.items())
        if any(v)
    ]


def areas_of(region: str) -> list[str]:
    """The areas a region counts in: itself and every region above it ("a.b.c": a, a.b, a.b.c)."""
    parts = region.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def area_deltas(deltas: Mapping[RowKey, Sequence[int]]) -> Deltas:
    """The deltas summed into every area above their region (keys: dim, day, area, key)."""
    out: Deltas = defaultdict(lambda: [0] * len(METRICS))
    for (dim, day, region, key), counts in deltas.items():
        for area in areas_of(region):
            total = out[(dim, day, area, key)]
            for i, n in enumerate(counts):
                total[i] += n
    return out


def upsert_statements(dialect: str, deltas: Mapping[RowKey, Sequence[int]], *, areas: bool = False) -> Iterable[Any]:
    """INSERT … ON CONFLICT DO UPDATE adding the deltas into case_stats (`areas`: already summed by
    area_deltas, into case_stat_areas), in key order (so that concurrent transactions lock shared
    rows in the same order and cannot deadlock), chunked."""
    table = CaseStatArea.__table__ if areas else CaseStat.__table__
    place = "area" if areas else "region"
    rows = _rows(deltas, place)
    insert = _insert_for(dialect)
    for start in range(0, len(rows), UPSERT_CHUNK):
        stmt = insert(table).values(rows[start : start + UPSERT_CHUNK])
        yield stmt.on_conflict_do_update(
            index_elements=[table.c.dim, table.c.day, table.c[place], table.c.key],
            set_={m: table.c[m] + stmt.excluded[m] for m in METRICS},
        )


def _team_id_now(case: Case) -> int | None:
    """The case's team as the flush is about to write it (a relationship set but not yet synced
    to the column wins; a column set directly wins over an untouched relationship)."""
    state = inspect(case)
    team_hist = state.attrs.team.history
    if team_hist.added:
        team = team_hist.added[0]
        return None if team is None else team.id
    return case.team_id


def _facts(case: Case) -> CaseFacts:
    return CaseFacts(
        region=case.region,
        source=case.source,
        category=case.category,
        team_id=_team_id_now(case),
        created_at=case.created_at,
        deadline_at=case.deadline_at,
    )


def _after_flush(session: Session, _context: Any) -> None:
    # after the flush's own statements (session.new still lists what it inserted): the shared
    # rollup rows are locked last, so concurrent transactions hold them only until COMMIT
    entries = [obj for obj in session.new if isinstance(obj, CaseEvent)]
    if not entries:
        return
    tz = session.info.get(TZ_KEY, UTC)
    deltas: Deltas = defaultdict(lambda: [0] * len(METRICS))
    for entry in sorted(entries, key=lambda e: (e.case_id or 0, e.seq)):
        case = entry.case if entry.case is not None else session.get(Case, entry.case_id)
        if case is None:
            continue  # the foreign key will refuse the entry anyway
        prior = [(e.to_status, e.at) for e in case.events if e is not entry and e.seq < entry.seq]
        event_deltas(
            _facts(case),
            at=entry.at,
            from_status=entry.from_status,
            to_status=entry.to_status,
            prior=prior,
            tz=tz,
            into=deltas,
        )
    rows = _rows(deltas)
    if rows:
        conn: Connection = session.connection()
        conn.execute(insert(CaseStatDelta), rows)


_NAMES = ("dim", "day", "region", "key", *METRICS)


def rollup_rows() -> Subquery:
    """Folded counters and the journal not folded yet, as one row source (columns as case_stats')."""
    folded = select(*(CaseStat.__table__.c[n] for n in _NAMES))
    journal = select(*(CaseStatDelta.__table__.c[n] for n in _NAMES))
    return union_all(folded, journal).subquery("rollup")


def area_rows() -> Subquery:
    """The counters of a region and everything below it (bound parameters: access.region_params):
    the folded area sums and the journal rows not folded yet of those regions, as one row source
    (columns as case_stats'; `region` is the area on folded rows). Summed, the same figures as
    rollup_rows() filtered by the region."""
    area = CaseStatArea.__table__.c
    folded = select(*(area.area.label("region") if n == "region" else area[n] for n in _NAMES)).where(
        area.area == bindparam("region")
    )
    delta = CaseStatDelta.__table__.c
    journal = select(*(delta[n] for n in _NAMES)).where(region_filter_bound(delta.region))
    return union_all(folded, journal).subquery("rollup")


async def fold(session: AsyncSession, *, limit: int = 5000) -> int:
    """Move up to `limit` journal rows, oldest first, into case_stats (one transaction: the caller's).
    Several hub processes may fold at once: each takes rows the others have not locked. Returns
    the rows folded."""
    d = CaseStatDelta
    columns = (d.id, d.dim, d.day, d.region, d.key, *(getattr(d, m) for m in METRICS))
    picked = (
        await session.execute(select(*columns).order_by(d.id).limit(limit).with_for_update(skip_locked=True))
    ).all()
    if not picked:
        return 0
    deltas: Deltas = defaultdict(lambda: [0] * len(METRICS))
    for row in picked:
        sums = deltas[(row.dim, row.day, row.region, row.key)]
        for i, metric in enumerate(METRICS):
            sums[i] += getattr(row, metric)
    dialect = session.get_bind().dialect.name
    for stmt in upsert_statements(dialect, deltas):
        await session.execute(stmt)
    for stmt in upsert_statements(dialect, area_deltas(deltas), areas=True):
        await session.execute(stmt)
    ids = [row.id for row in picked]
    for start in range(0, len(ids), UPSERT_CHUNK):
        await session.execute(delete(d).where(d.id.in_(ids[start : start + UPSERT_CHUNK])))
    return len(ids)


def recording_sessions(tz: tzinfo) -> sessionmaker[Session]:
    """The sync session factory for write sessions: keeps the rollup with every timeline entry.

    Pass it as `sync_session_class` to an `async_sessionmaker`.
    """
    factory: sessionmaker[Session] = sessionmaker(info={TZ_KEY: tz})
    event.listen(factory, "after_flush", _after_flush)
    return factory
