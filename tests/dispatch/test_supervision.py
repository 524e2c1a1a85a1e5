"""The deadline supervisor with an injected clock, on SQLite and PostgreSQL: warning at the share of
the limit, supervision and reminders at the interval, penalty after unanswered reminders, answers
that reset the count; exactly-once across a restart, a lapsed claim, and two supervisors racing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from fusionhub.dispatch import clock as clk
from fusionhub.dispatch.config import DispatchConfig
from fusionhub.dispatch.db import create_engine
from fusionhub.dispatch.models import CaseClock, OutboxEntry
from fusionhub.dispatch.outbox import relay_outbox
from fusionhub.dispatch.service import DispatchService
from fusionhub.dispatch.worktime import Limit, WorkCalendar
from fusionhub.signaling.messages import Topic
from tests.dispatch.conftest import Env

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2025, 9, 15, 9, 0, tzinfo=SH).timestamp()
HOUR = 3600.0
CONFIG = DispatchConfig(reminder_interval_s=600, reminders_before_penalty=3, claim_lease_s=30, warn_share=0.8)


# -- the clock's rules, pure -----------------------------------------------------------------------

def _armed(limit: Limit = Limit("urgent_hours", 2)) -> Any:
    start = datetime(2025, 9, 15, 1, 0, tzinfo=UTC)
    return clk.arm(None, clk.STAGE_HANDLE, limit, start, WorkCalendar(), clk.Supervision(interval=timedelta(minutes=10))), start


def test_clock_goes_warned_overdue_reminded_penalized() -> None:
    sup = clk.Supervision(interval=timedelta(minutes=10), max_unanswered=3)
    c, start = _armed()
    assert c.next_check_at == start + timedelta(minutes=96)  # 80 % of 2 h
    assert clk.check(c, start + timedelta(minutes=10), sup) == [] and c.state == "running"  # early: nothing
    [warn] = clk.check(c, start + timedelta(minutes=96), sup)
    assert (warn.action, warn.kind, c.state, c.next_check_at) == ("warn", "warning", "warned", c.due_at)
    [over] = clk.check(c, c.due_at, sup)
    assert (over.kind, over.data["reminder"], c.state) == ("overdue", 1, "overdue")
    assert c.next_check_at == c.due_at + timedelta(minutes=10)
    kinds = []
    at = c.due_at
    for _ in range(3):
        at += timedelta(minutes=10)
        kinds += [n.kind for n in clk.check(c, at, sup)]
    assert kinds == ["reminder", "reminder", "penalty"]
    assert c.state == "penalized" and c.penalties == 1 and c.next_check_at is None and c.reminders == 3


def test_an_answer_resets_the_unanswered_count() -> None:
    sup = clk.Supervision(interval=timedelta(minutes=10), max_unanswered=2)
    c, _ = _armed()
    clk.check(c, c.due_at, sup)  # reminder 1
    clk.answered(c)
    assert c.unanswered == 0
    [r2] = clk.check(c, c.due_at + timedelta(minutes=10), sup)
    [r3] = clk.check(c, c.due_at + timedelta(minutes=20), sup)
    assert (r2.data["unanswered"], r3.data["unanswered"]) == (1, 2)
    [pen] = clk.check(c, c.due_at + timedelta(minutes=30), sup)
    assert pen.kind == "penalty"


def test_a_late_check_sends_one_notice_not_a_backlog() -> None:
    sup = clk.Supervision(interval=timedelta(minutes=10))
    c, _ = _armed()
    notices = clk.check(c, c.due_at + timedelta(hours=5), sup)  # the hub was down for hours
    assert [n.kind for n in notices] == ["overdue"]
    assert c.next_check_at == c.due_at + timedelta(hours=5, minutes=10)


def test_pause_and_resume_shift_the_deadline_and_the_reminder_schedule() -> None:
    sup = clk.Supervision(interval=timedelta(minutes=10))
    cal = WorkCalendar()
    c, start = _armed()
    clk.pause(c, start + timedelta(minutes=30), cal)
    assert c.remaining == pytest.approx(1.5) and c.next_check_at is None
    assert clk.check(c, start + timedelta(days=3), sup) == [] and c.state == "running"  # paused: nothing runs
    clk.resume(c, start + timedelta(days=1), cal, sup)
    assert c.due_at == start + timedelta(days=1, minutes=90)
    assert c.warn_at == start + timedelta(days=1, minutes=66)
    assert c.next_check_at == c.warn_at and c.state == "running"


# -- the supervisor on a real database -----------------------------------------------------------

def _service(env: Env, engine: Any = None) -> DispatchService:
    async def publish(topic: Topic, data: dict[str, Any]) -> None:
        env.published.append((topic, data))

    return DispatchService(
        engine or env.engine, data_dir=env.data_dir, publish=publish, clock=env.clock, config=CONFIG
    )


async def _overdue_case(env: Env, s: DispatchService) -> dict[str, Any]:
    """A roadside-parking case (2 urgent hours) dispatched at MONDAY_9."""
    env.clock.t = MONDAY_9
    env.clock.step = 0.001  # reads move the clock on a little (ordered times), not seconds per round
    case = await s.create_case(env.user("duty"), source="manual", category="roadside_parking", location="Gate 3")
    await s.file_case(env.user("duty"), case["id"])
    return await s.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"])


async def _system_entries(s: DispatchService, env: Env, case_id: int) -> list[str]:
    case = await s.get_case(env.user("duty"), case_id)
    return [e["action"] for e in case["timeline"] if e["actor"] is None]


async def _alerts(env: Env, s: DispatchService) -> list[dict[str, Any]]:
    """Publish what the supervisor queued, as the hub's outbox relay does; the alerts sent."""
    env.published.clear()
    while await relay_outbox(s, s._publish):  # type: ignore[arg-type]
        pass
    return [d for t, d in env.published if t == Topic.CASE_ALERT]


async def test_warning_supervision_reminders_and_penalty(env: Env) -> None:
    s = _service(env)
    case = await _overdue_case(env, s)
    cid = case["id"]
    me = "hub-a"
    assert await s.supervise_due(me) == (0, [])  # nothing is due yet
    env.clock.t = MONDAY_9 + 1.6 * HOUR + 1
    claimed, alerts = await s.supervise_due(me)
    assert claimed == 1 and [a["kind"] for a in alerts] == ["warning"]
    pushed = await _alerts(env, s)
    assert pushed == alerts and pushed[0]["team_id"] == env.team("patrol")["id"] and pushed[0]["region"] == "city"
    assert pushed[0]["due_at"] == case["deadline_at"] and pushed[0]["stage"] == "handle"
    assert await s.supervise_due(me) == (0, [])  # once only
    env.clock.t = MONDAY_9 + 2 * HOUR + 1
    _, alerts = await s.supervise_due(me)
    assert [(a["kind"], a["reminder"]) for a in alerts] == [("overdue", 1)]
    got = await s.get_case(env.user("commander"), cid)
    assert got["clock"]["state"] == "overdue" and got["clock"]["unanswered"] == 1
    # the team answers: progress resets the count; reminders go on while it is overdue
    await s.progress_case(env.user("field1"), cid, "on our way")
    assert (await s.get_case(env.user("duty"), cid))["clock"]["unanswered"] == 0
    kinds = []
    for _ in range(4):
        env.clock.t += 601  # the interval (600 s) after the last reminder, and a second
        kinds += [(a["kind"], a["reminder"], a["unanswered"]) for a in (await s.supervise_due(me))[1]]
    assert kinds == [("reminder", 2, 1), ("reminder", 3, 2), ("reminder", 4, 3), ("penalty", 0, 3)]
    env.clock.t += 3600
    assert await s.supervise_due(me) == (0, [])  # penalized: no more reminders
    entries = await _system_entries(s, env, cid)
    assert entries == ["warn", "supervise", "remind", "remind", "remind", "penalize"]
    got = await s.get_case(env.user("commander"), cid)
    assert got["clock"]["penalties"] == 1 and got["clock"]["state"] == "penalized"
    assert await s.verify_timeline(cid)
    # reporting stops the clock for good
    await s.acknowledge_case(env.user("field1"), cid)
    await s.report_handled(env.user("field1"), cid, "done late")
    env.clock.t += 86400
    assert await s.supervise_due(me) == (0, [])


async def test_an_action_since_the_claim_wins(env: Env) -> None:
    s = _service(env)
    case = await _overdue_case(env, s)
    env.clock.t = MONDAY_9 + 1.7 * HOUR
    [clock_id] = await s.claim_due_clocks("hub-a")
    await s.acknowledge_case(env.user("field1"), case["id"])
    await s.report_handled(env.user("field1"), case["id"], "done in time")  # the clock stands still
    assert await s.check_clock("hub-a", clock_id) == []
    assert await _system_entries(s, env, case["id"]) == []


async def test_reminders_survive_a_restart_and_a_dead_hubs_claim(env: Env) -> None:
    s = _service(env)
    case = await _overdue_case(env, s)
    cid = case["id"]
    env.clock.t = MONDAY_9 + 2 * HOUR + 5
    # hub A claims the due clock and dies before handling it
    assert len(await s.claim_due_clocks("hub-a")) == 1
    await env.engine.dispose()
    # hub B starts (a new engine, a new service): A's lease still holds, so B waits
    engine = create_engine(env.url)
    try:
        b = _service(env, engine)
        assert await b.supervise_due("hub-b") == (0, [])
        env.clock.t += CONFIG.claim_lease_s + 1  # the lease lapses: B takes over, sends it once
        _, alerts = await b.supervise_due("hub-b")
        assert [a["kind"] for a in alerts] == ["overdue"]
        assert await b.supervise_due("hub-b") == (0, [])
        # A comes back (same name) with its stale claim: the row is no longer its own
        a_again = _service(env, engine)
        assert await a_again.check_clock("hub-a", (await b.get_case(env.user("duty"), cid))["id"]) == []
        # the schedule is in the database: a restart later still reminds on time, once
        await engine.dispose()
        engine = create_engine(env.url)
        c = _service(env, engine)
        env.clock.t += 600
        assert [a["kind"] for a in (await c.supervise_due("hub-c"))[1]] == ["reminder"]
        assert await _system_entries(c, env, cid) == ["supervise", "remind"]
        # the alerts wait in the outbox until a relay publishes them
        async with engine.connect() as conn:
            queued = (await conn.execute(select(OutboxEntry.topic))).scalars().all()
        assert queued.count(str(Topic.CASE_ALERT)) == 2
    finally:
        await engine.dispose()


async def test_two_supervisors_racing_never_double_a_reminder(env: Env) -> None:
    s = _service(env)
    ids = [(await _overdue_case(env, s))["id"] for _ in range(12)]
    other_engine = create_engine(env.url)
    try:
        a, b = s, _service(env, other_engine)
        for at, kind in ((MONDAY_9 + 1.7 * HOUR, "warning"), (MONDAY_9 + 2 * HOUR + 1, "overdue"),
                         (MONDAY_9 + 2 * HOUR + 602, "reminder")):
            env.clock.t = at
            env.clock.step = 0
            results = await asyncio.gather(
                *(svc.supervise_due(name, limit=5) for svc, name in ((a, "hub-a"), (b, "hub-b")) for _ in range(3))
            )
            # whatever the split, each case got exactly one alert of this kind
            alerts = [al for _, batch in results for al in batch]
            while True:  # work left in the batch limit: run more rounds, still racing
                more = await asyncio.gather(a.supervise_due("hub-a", limit=5), b.supervise_due("hub-b", limit=5))
                extra = [al for _, batch in more for al in batch]
                if not extra:
                    break
                alerts += extra
            assert sorted(al["case_id"] for al in alerts) == sorted(ids), kind
            assert {al["kind"] for al in alerts} == {kind}
        for cid in ids:
            assert await _system_entries(s, env, cid) == ["warn", "supervise", "remind"]
        async with env.engine.connect() as conn:
            claimed = (await conn.execute(text("SELECT count(*) FROM case_clocks WHERE claimed_by IS NOT NULL"))).scalar()
            assert claimed == 0
            rows = (await conn.execute(select(CaseClock.reminders))).scalars().all()
            assert rows == [2] * len(ids)
    finally:
        await other_engine.dispose()


async def test_a_supervisor_loop_runs_and_stops(env: Env) -> None:
    from fusionhub.dispatch.supervision import Supervisor

    s = DispatchService(
        env.engine, data_dir=env.data_dir, clock=env.clock, config=CONFIG.model_copy(update={"supervisor_poll_s": 0.05})
    )
    case = await _overdue_case(env, s)
    env.clock.t = MONDAY_9 + 2 * HOUR + 1
    env.clock.step = 0
    poked = asyncio.Event()
    sup = Supervisor(s, relay=poked.set)
    sup.start()
    try:
        await asyncio.wait_for(poked.wait(), 10)
    finally:
        await sup.stop()
        await sup.stop()  # safe twice
    assert sup.alerts == 1
    assert await _system_entries(s, env, case["id"]) == ["supervise"]
