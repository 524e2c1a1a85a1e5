"""Alembic: `upgrade` builds the whole schema on a fresh SQLite file and a fresh PostgreSQL database,
matches the models exactly, and is idempotent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from fusionhub.dispatch.db import alembic_config, create_engine, upgrade
from fusionhub.dispatch.models import Base
from tests.dispatch.conftest import PG_SERVER, _admin_sql

TABLES = {"users", "teams", "cameras", "zones", "flags", "cases", "case_events", "attachments", "tasks"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/sub/dir/fresh.db"  # parent folders are created
        return
    name = f"fh_migrate_{uuid.uuid4().hex[:12]}"
    await _admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER + name
    finally:
        await _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _state(conn: Connection) -> tuple[set[str], set[str], list[object]]:
    tables = set(inspect(conn).get_table_names())
    current = set(MigrationContext.configure(conn).get_current_heads())
    diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return tables, current, diff


async def test_upgrade_creates_the_schema_and_is_idempotent(fresh_url: str) -> None:
    # one head per feature branch (each off an earlier revision); upgrade applies them all
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert heads
    await upgrade(fresh_url)
    await upgrade(fresh_url)  # a second run changes nothing and does not fail
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            tables, current, diff = await conn.run_sync(_state)
    finally:
        await engine.dispose()
    assert TABLES <= tables and "alembic_version" in tables
    assert current == heads
    assert diff == []  # the migration builds exactly what the models describe


def _upgrade_to(conn: Connection, revision: str) -> None:
    command.upgrade(alembic_config(conn), revision)


async def test_rollup_folded_before_the_area_sums_is_summed_into_them(fresh_url: str) -> None:
    """A hub upgraded with statistics already folded keeps every figure: revision 0011 sums the
    folded counters into the areas above their regions (a district, the city)."""
    engine = create_engine(fresh_url)
    metrics = "filed, dispatched, handled, handled_late, closed, on_time, current"
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0010")
            await conn.execute(
                text(
                    f"INSERT INTO case_stats (dim, day, region, key, {metrics}) VALUES "
                    "('category', '2025-03-10', 'city.west', 'garbage', 2, 1, 1, 0, 1, 1, 0), "
                    "('category', '2025-03-10', 'city.west.s1', 'garbage', 3, 0, 0, 0, 0, 0, 0), "
                    "('category', '2025-03-10', 'city.east', 'garbage', 5, 0, 0, 0, 0, 0, 0), "
                    "('status', '2025-03-10', 'city.east', 'filed', 0, 0, 0, 0, 0, 0, 5)"
                )
            )
        await upgrade(fresh_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT dim, area, key, filed, closed, current FROM case_stat_areas"))
            ).all()
    finally:
        await engine.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("category", "city", "garbage", 10, 1, 0),
        ("category", "city.east", "garbage", 5, 0, 0),
        ("category", "city.west", "garbage", 5, 1, 0),
        ("category", "city.west.s1", "garbage", 3, 0, 0),
        ("status", "city", "filed", 0, 0, 5),
        ("status", "city.east", "filed", 0, 0, 5),
    ]


async def test_sqlite_engine_settings(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
    finally:
        await engine.dispose()
    assert (mode, fks) == ("wal", 1) and busy >= 1000


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        create_engine("mysql+aiomysql://127.0.0.1/x")
