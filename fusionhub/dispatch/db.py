"""The database engine (SQLite or PostgreSQL, async) and schema migrations (Alembic, run in-process)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option naming a read-write unit of work: on SQLite it starts with BEGIN IMMEDIATE,
# so concurrent writers queue on the write lock (busy timeout) instead of failing late.
WRITE_OPTION = "fusionhub_write"
# A PostgreSQL connection idle this long or more is pinged before use (_ping_idle_connections).
PING_IDLE_S = 0.5
_LAST_USED = "fusionhub_last_used"


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine: `sqlite+aiosqlite:///path` (WAL, foreign keys, busy timeout) or
    `postgresql+asyncpg://...`."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # aiosqlite logs every statement with its parameters at DEBUG: camera URLs carry credentials
        quiet = logging.getLogger("aiosqlite")
        if quiet.level < logging.INFO:  # NOTSET or DEBUG: would follow a DEBUG root
            quiet.setLevel(logging.INFO)
        engine = create_async_engine(url)
        _tune_sqlite(engine)
        return engine
    if url.get_backend_name() == "postgresql":
        engine = create_async_engine(url)
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
