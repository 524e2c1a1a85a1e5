"""The transition unit of work (dispatch/unit.py): on PostgreSQL a transition reads its case in one
statement (the collections as JSON) and writes in one; these tests hold those to the plain Core
statements the unit runs on SQLite, on the same database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import cv2
import numpy as np
import pytest
import sqlalchemy
from sqlalchemy import text

from fusionhub.dispatch import db, unit
from fusionhub.dispatch.errors import Conflict
from tests.dispatch.conftest import Env


def _jpeg() -> bytes:
    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))
    assert ok
    return jpeg.tobytes()


def _plain(rows: Any) -> list[list[Any]]:
    return [list(r) for r in rows]


async def _both_loads(env: Env, case_id: int, actor_id: int) -> tuple[Any, Any]:
    async with env.engine.connect() as conn:
        core = await unit.CoreIO(conn).load(case_id, actor_id)
        raw = (await conn.get_raw_connection()).driver_connection
        pg = await unit.PgIO(raw, env.engine.dialect).load(case_id, actor_id)
    return core, pg


async def _dispatched_on_postgresql(env: Env, why: str) -> int:
    """A filed case dispatched to the patrol team (its id); the test is skipped on SQLite."""
    if env.backend == "sqlite":
        pytest.skip(why)
    _, case = await env.filed_case()
    await env.service.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"])
    return int(case["id"])


async def test_one_statement_load_reads_what_the_five_statements_read(env: Env) -> None:
    """A case with a timeline (notes, JSON data), a task, an extension request and a photo: every
    value, timestamps included, is the same either way."""
    s = env.service
    cid = await _dispatched_on_postgresql(env, "the one-statement load is PostgreSQL's")
    await s.acknowledge_case(env.user("field1"), cid)
    await s.request_extension(env.user("field1"), cid, 2, "waiting for the truck — 等待清运车")
    await s.report_handled(env.user("field1"), cid, "cleared", photo=_jpeg(), photo_type="image/jpeg")
    core, pg = await _both_loads(env, cid, env.user("duty")["id"])
    assert core is not None and pg is not None
    assert list(core[0]) == list(pg[0])
    for kind, a, b in zip(("tasks", "extensions", "attachments", "timeline"), core[1:], pg[1:], strict=True):
        assert a, kind  # each collection has rows: the comparison below is not of two empty lists
        assert _plain(a) == _plain(b), kind
    assert await _both_loads(env, 10**9, env.user("duty")["id"]) == (None, None)


async def test_a_transition_replies_with_what_a_fresh_read_shows(env: Env) -> None:
    """The reply is built from the unit's objects after the write; read back, the case is the same."""
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    replies = [
        await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"]),
        await s.acknowledge_case(env.user("field1"), cid),
        await s.request_extension(env.user("field1"), cid, 1, "rain"),
        await s.approve_extension(env.user("commander"), cid),
        await s.report_handled(env.user("field1"), cid, "done", photo=_jpeg(), photo_type="image/jpeg"),
    ]
    for reply in replies:
        assert reply["timeline"][-1]["seq"] == len(reply["timeline"])
    assert replies[-1] == await s.get_case(env.user("commander"), cid)
    assert replies[-1]["tasks"][0]["id"] is not None and replies[-1]["attachments"][-1]["id"] is not None
    assert await s.verify_timeline(cid)


async def test_a_transition_that_fails_to_write_leaves_nothing(env: Env) -> None:
    """A timeline entry whose seq another writer took (the unique (case_id, seq)): the case, its
    clock and task, the statistics journal are all as before, and the caller gets a Conflict."""
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    before = await s.get_case(env.user("commander"), cid)
    counts = [await env.count(t) for t in ("tasks", "case_events", "case_stat_deltas", "case_clocks")]

    async def step(work: unit.Unit, case: Any, actor: Any, now: Any) -> tuple[dict[str, Any], None]:
        case.deadline_at = now
        work.timeline.pop()  # the unit now chains the entry onto a seq the case already has
        return {}, None

    with pytest.raises(Conflict):
        await s._transition(env.user("commander"), cid, "dispatch", None, step)
    assert await s.get_case(env.user("commander"), cid) == before
    assert [await env.count(t) for t in ("tasks", "case_events", "case_stat_deltas", "case_clocks")] == counts
    assert await s.verify_timeline(cid)


async def test_cancelled_transitions_leave_the_service_working(env: Env) -> None:
    """Requests cancelled at every point of a transition (a client that went away): each one either
    happened whole or not at all, and the service goes on serving from the same pool."""
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    await s.acknowledge_case(env.user("field1"), cid)
    for ticks in range(40):  # cancelled after 0, 1, 2, ... turns of the event loop
        task = asyncio.ensure_future(s.progress_case(env.user("field1"), cid, f"update {ticks}"))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    done = await s.progress_case(env.user("field1"), cid, "after the cancellations")
    notes = [e["note"] for e in done["timeline"] if e["action"] == "progress"]
    assert notes[-1] == "after the cancellations"
    assert all(n.startswith("update ") for n in notes[:-1])
    assert len(done["timeline"]) == await env.count("case_events", f"case_id = {cid}")
    assert await s.verify_timeline(cid)


async def test_connections_killed_under_the_pool_are_replaced_unseen(env: Env) -> None:
    """PostgreSQL drops every connection (a restart, a failover, an admin's pg_terminate_backend):
    the next board read and the next transition still succeed, on fresh connections."""
    s = env.service
    cid = await _dispatched_on_postgresql(env, "connections to PostgreSQL")
    await s.list_cases(env.user("commander"))
    database = env.engine.url.database
    killer = await asyncpg.connect(host=env.engine.url.host, port=env.engine.url.port or 5432,
                                   user=env.engine.url.username, database="postgres")
    try:
        killed = await killer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await killer.close()
    assert killed >= 1
    await asyncio.sleep(db.PING_IDLE_S + 0.1)  # a restart takes longer than this
    assert [c["id"] for c in await s.list_cases(env.user("commander"), "dispatched")] == [cid]
    acked = await s.acknowledge_case(env.user("field1"), cid)
    assert acked["status"] == "handling" and await s.verify_timeline(cid)


async def test_a_value_too_long_for_its_column_is_refused_not_cut(env: Env) -> None:
    """The one-statement write casts every value to its column's type: never to a length, which
    would cut a long value short without a word where the column refuses it."""
    if env.backend == "sqlite":
        pytest.skip("SQLite keeps strings of any length")
    _, case = await env.filed_case()
    cid = case["id"]
    async with env.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version FROM cases WHERE id = :id"), {"id": cid})).scalar_one()
    too_long = "dispatched-and-more"  # the status column holds 16 characters
    async with unit.transaction(env.service.write_engine) as io:
        with pytest.raises(asyncpg.StringDataRightTruncationError):
            await io.apply([unit.Op(unit.CASES, {"status": too_long, "version": version + 1},
                                    key={"id": cid, "version": version})])
    assert (await env.service.get_case(env.user("commander"), cid))["status"] == "filed"


async def test_more_transitions_at_once_than_the_pool_has_connections(env: Env) -> None:
    """A burst of transitions in one hub process, more than its database pool holds, each needing
    the working calendar (not yet cached) and an auto-dispatch rule: every one completes. A
    transition that took a second connection while holding its own (to read the calendar or the
    rules) left the pool empty with every holder waiting for another: nothing moved until the
    pool's timeout failed them all."""
    s = env.service
    admin, duty, cmd = env.user("admin"), env.user("duty"), env.user("commander")
    await s.replace_dispatch_rules(admin, [{"region": "city", "team_id": env.team("patrol")["id"]}])
    reported = [
        (await s.create_case(duty, source="manual", category="dirty_road", location=f"No. {n}"))["id"]
        for n in range(6)
    ]
    small = db.create_engine(env.url, pool_size=2, max_overflow=0, pool_timeout=5)
    try:
        service = env.new_service(small)  # a fresh process: nothing cached
        filed = await asyncio.gather(*(service.file_case(duty, cid) for cid in reported))
        assert [c["status"] for c in filed] == ["filed"] * 6
        dispatched = await asyncio.gather(*(service.dispatch_case(cmd, cid) for cid in reported))
        assert [c["team_id"] for c in dispatched] == [env.team("patrol")["id"]] * 6
    finally:
        await small.dispose()
    for cid in reported:
        assert await s.verify_timeline(cid)


async def test_bursts_reuse_the_pools_connections(env: Env) -> None:
    """On PostgreSQL, bursts of concurrent transitions (more than SQLAlchemy's default of five
    kept connections) run on connections the pool keeps: the second burst opens none. A pool that
    opened extra connections for a burst and closed them after paid a connection set-up per
    transition, most of a transition's cost."""
    if env.backend == "sqlite":
        pytest.skip("SQLite keeps SQLAlchemy's pool")
    s = env.service
    duty, cmd = env.user("duty"), env.user("commander")
    reported = [
        (await s.create_case(duty, source="manual", category="dirty_road", location=f"No. {n}"))["id"]
        for n in range(20)
    ]
    engine = db.create_engine(env.url)
    opened = 0

    def count(*_args: Any) -> None:
        nonlocal opened
        opened += 1

    sqlalchemy.event.listen(engine.sync_engine.pool, "connect", count)
    try:
        service = env.new_service(engine)
        await asyncio.gather(*(service.file_case(duty, cid) for cid in reported[:10]))
        first = opened
        await asyncio.gather(*(service.file_case(duty, cid) for cid in reported[10:]))
        for burst in (reported[:10], reported[10:]):
            await asyncio.gather(*(service.dispatch_case(cmd, cid, env.team("patrol")["id"]) for cid in burst))
    finally:
        await engine.dispose()
    assert 5 < first <= db.PG_POOL  # the burst ran in parallel on connections of its own
    assert opened == first  # and the later bursts found them kept
