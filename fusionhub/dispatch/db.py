"""The database engine (SQLite or PostgreSQL, async), schema migrations (Alembic, run in-process),
and the hot paths' statements run straight on the asyncpg connection (PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import CompoundSelect, Connection, Dialect, Select, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option naming a read-write unit of work: on SQLite it starts with BEGIN IMMEDIATE,
# so concurrent writers queue on the write lock (busy timeout) instead of failing late.
WRITE_OPTION = "fusionhub_write"
# A PostgreSQL connection idle this long or more is pinged before use (_ping_idle_connections).
PING_IDLE_S = 0.5
_LAST_USED = "fusionhub_last_used"


# PostgreSQL connections a hub process keeps open (HubConfig.database_pool). A pool with room
# for more on demand ("overflow") opens one for a burst and closes it when handed back: with 8
# transitions at once against SQLAlchemy's 5 kept connections, opening and closing them cost more
# than the transitions (one process: 699/s against 1,159/s with 20 kept). So a fixed number is
# kept and a burst beyond it waits its turn for one.
PG_POOL = 20


def create_engine(database_url: str, pool_size: int | None = None, **pool: Any) -> AsyncEngine:
    """An async engine: `sqlite+aiosqlite:///path` (WAL, foreign keys, busy timeout) or
    `postgresql+asyncpg://...` (`pool_size` connections kept, default PG_POOL, none more);
    `pool`: more of the pool's options (max_overflow, pool_timeout)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        in_file = bool(url.database) and url.database != ":memory:"
        if in_file:
            Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        # aiosqlite logs every statement with its parameters at DEBUG: camera URLs carry credentials
        quiet = logging.getLogger("aiosqlite")
        if quiet.level < logging.INFO:  # NOTSET or DEBUG: would follow a DEBUG root
            quiet.setLevel(logging.INFO)
        if pool_size is not None and in_file:  # an in-memory database is one connection, not a pool
            pool["pool_size"] = pool_size
        engine = create_async_engine(url, **pool)
        _tune_sqlite(engine)
        return engine
    if url.get_backend_name() == "postgresql":
        options = {"pool_size": pool_size or PG_POOL, "max_overflow": 0, **pool}
        engine = create_async_engine(url, **options)
        _ping_idle_connections(engine)
        return engine
    raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite+aiosqlite or postgresql+asyncpg")


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a pooled connection before handing it out only when it sat idle `PING_IDLE_S` or
    more; a dead one is replaced, the caller never sees it.

    The pool's own pre-ping pings at every checkout: a round trip per request or transition,
    about a tenth of a transition's time here. A connection handed back a moment ago is as alive
    as a ping would show (the idea of HikariCP's alive-bypass window); a database restart takes
    longer than the window, so every connection from before it is pinged and replaced."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PING_IDLE_S:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:  # whatever the driver raises for a connection that is gone
            log.info("a pooled database connection was gone; replacing it (%s)", exc.__class__.__name__)
            raise DisconnectionError("pooled connection failed its ping") from exc


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # the driver's implicit transactions would start too late and DEFERRED; we emit BEGIN ourselves
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


# a statement of plain columns, and a function that runs one (built once, cached) with its named
# parameters and returns its rows
Rows = Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]
Fetch = Callable[[Rows, dict[str, Any]], Awaitable[Sequence[Any]]]


def uses_asyncpg(engine: AsyncEngine | AsyncConnection) -> bool:
    """Whether statements may run straight on the driver (PostgreSQL through asyncpg)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


@contextlib.asynccontextmanager
async def driver_connection(conn: AsyncConnection) -> AsyncIterator[Any]:
    """The asyncpg connection under a pooled one, for statements SQLAlchemy does not run (no
    BEGIN: each statement is its own transaction). If the block is cancelled or the connection
    fails, it is taken out of the pool: the driver may be mid-statement, and SQLAlchemy, which
    did not see the statements, would pool it as clean."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    try:
        yield raw
    except (asyncio.CancelledError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        await conn.invalidate()
        raise


@functools.cache
def compiled_sql(stmt: Rows, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """A statement built once (cached) as SQL text for the driver: its text, the order of its
    parameters and the values of those the statement carries itself. Running a statement this
    way skips SQLAlchemy's per-call cache key, compilation and result wrapping."""
    defaults = dict(stmt.compile(dialect=dialect).params)
    unbound = {k: 0 for k, v in defaults.items() if v is None}
    rendered = stmt.params(**unbound).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(rendered), tuple(rendered.positiontup or ()), defaults


def driver_args(compiled: tuple[str, tuple[str, ...], dict[str, Any]], params: dict[str, Any]) -> list[Any]:
    """The positional arguments of a compiled_sql statement from named `params` (the statement's
    own values where a name is not given)."""
    _sql, order, defaults = compiled
    return [params[k] if k in params else defaults[k] for k in order]


@contextlib.asynccontextmanager
async def reader(conn: AsyncConnection) -> AsyncIterator[Fetch]:
    """How the hot reads (the board's lists, statistics) run their cached statements: on
    PostgreSQL (asyncpg) straight on the driver, each row a named tuple of the statement's
    columns (SQLAlchemy's per-call cache key, execution machinery and Row objects cost more than
    a short statement itself); elsewhere through SQLAlchemy Core. Rows read the same either way
    (by name or position); values come as the driver gives them (aware UTC datetimes on both)."""
    if not uses_asyncpg(conn):
        async def core(stmt: Rows, params: dict[str, Any]) -> Sequence[Any]:
            return (await conn.execute(stmt, params)).all()

        yield core
        return
    async with driver_connection(conn) as raw:
        async def driver(stmt: Rows, params: dict[str, Any]) -> Sequence[Any]:
            compiled = compiled_sql(stmt, conn.dialect)
            make = _record_type(stmt)._make
            return [make(r) for r in await raw.fetch(compiled[0], *driver_args(compiled, params))]

        yield driver


@functools.cache
def _record_type(stmt: Rows) -> type[Any]:
    """A named tuple of the statement's columns, for the driver's rows."""
    return namedtuple("Record", list(stmt.selected_columns.keys()))  # type: ignore[misc]


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the package's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection) -> None:
    # "heads": independent branches (one per feature area, each off an earlier revision) all apply
    command.upgrade(alembic_config(connection), "heads")


async def upgrade(database_url: str) -> None:
    """Migrate the database to the latest schema (idempotent)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync)
    finally:
        await engine.dispose()
    log.info("database schema is at head")
