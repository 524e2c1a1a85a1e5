"""Deadline supervision at city scale on PostgreSQL: finding due clocks among many, and durable
reminders per second through the real supervisor code, with one and with two supervisors racing.

Seeds N open cases with their stage clocks (COPY-speed bulk insert through SQLAlchemy Core), of which
D are due; then measures
- the claim of due work (the indexed, guarded UPDATE … RETURNING of `SupervisionService.claim_due_clocks`)
  beside the naive way (load every running clock and compare deadlines in Python), p50/p99;
- reminders per second through `supervise_due` (each one: lock, timeline entry with its hash, clock
  moved on, alert queued in the outbox, COMMIT), one supervisor, then two on separate engines racing,
  checking that every due case got exactly one entry.

Figures are noisy on a shared machine: /proc/loadavg is printed beside each. The last line is one
JSON object. Usage: python -m bench.supervision [--cases 100000] [--due 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, text

from fusionhub.dispatch.config import DispatchConfig
from fusionhub.dispatch.db import create_engine, upgrade
from fusionhub.dispatch.models import Case, CaseClock, CaseEvent
from fusionhub.dispatch.service import DispatchService

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
NOW = datetime(2025, 9, 15, 6, 0, tzinfo=UTC)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def seed(service: DispatchService, n: int, due: int) -> None:
    team = await service.create_team("Bench team", "city")
    await service.create_user("bench-field", "x", "field", "city", "Bench", team_id=team["id"])
    chunk = 5000
    async with service.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows = range(start, min(n, start + chunk))
            cases = [
                {
                    "id": i + 1, "title": f"case {i}", "status": "handling", "source": "hotline",
                    "category": "roadside_parking", "region": f"city.d{i % 12:02d}", "location": "x",
                    "team_id": team["id"], "deadline_at": NOW + timedelta(hours=1 + i % 50),
                    "created_at": NOW - timedelta(hours=1), "updated_at": NOW - timedelta(hours=1), "version": 1,
                }
                for i in rows
            ]
            await conn.execute(insert(Case), cases)
            clocks = []
            for i in rows:
                is_due = i < due
                # the others fall due later than both rounds measured here
                due_at = NOW - timedelta(seconds=10) if is_due else NOW + timedelta(hours=3 + i % 50)
                clocks.append({
                    "case_id": i + 1, "stage": "handle", "limit_type": "urgent_hours", "limit_amount": 2.0,
                    "started_at": NOW - timedelta(hours=2), "warn_at": due_at - timedelta(minutes=24),
                    "due_at": due_at, "state": "warned", "next_check_at": due_at,
                    "reminders": 0, "unanswered": 0, "penalties": 0,
                })
            await conn.execute(insert(CaseClock), clocks)
        await conn.execute(text("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))"))
        await conn.execute(text("ANALYZE"))


async def naive_find(service: DispatchService) -> int:
    """Every running clock loaded, the deadline compared in Python (what a simple loop would do)."""
    async with service.read_session() as session:
        rows = (await session.execute(select(CaseClock.id, CaseClock.next_check_at).where(
            CaseClock.state.in_(("running", "warned", "overdue"))
        ))).all()
    now = service.now()
    return sum(1 for _, at in rows if at is not None and at <= now)


async def indexed_find(service: DispatchService) -> int:
    """The claim itself (then released), as the supervisor runs it."""
    ids = await service.claim_due_clocks("bench-probe", limit=service.config.claim_batch)
    async with service.engine.begin() as conn:
        await conn.execute(text("UPDATE case_clocks SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = 'bench-probe'"))
    return len(ids)


async def timed(fn: Any, rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def drain(service: DispatchService, name: str) -> int:
    total = 0
    while True:
        claimed, alerts = await service.supervise_due(name)
        total += len(alerts)
        if claimed == 0:
            return total


async def main(args: argparse.Namespace) -> dict[str, Any]:
    name = f"fh_bench_sup_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = SERVER + name
    engines = []
    try:
        await upgrade(url)
        clock_value = [NOW.timestamp()]
        config = DispatchConfig(claim_batch=200)

        def make() -> DispatchService:
            engine = create_engine(url)
            engines.append(engine)
            return DispatchService(engine, data_dir=Path("/tmp"), clock=lambda: clock_value[0], config=config)

        a = make()
        t0 = time.perf_counter()
        await seed(a, args.cases, args.due)
        print(f"seeded {args.cases:,} open cases with clocks, {args.due:,} due, in {time.perf_counter() - t0:.1f} s "
              f"(load {loadavg()})")
        naive = await timed(lambda: naive_find(a), 10)
        indexed = await timed(lambda: indexed_find(a), 50)
        load_find = loadavg()
        # one supervisor: every due case gets its overdue alert (reminder 1)
        t0 = time.perf_counter()
        one = await drain(a, "hub-a")
        one_s = time.perf_counter() - t0
        load_one = loadavg()
        # an interval later, two supervisors race for the reminders
        clock_value[0] += config.reminder_interval_s + 1
        b = make()
        t0 = time.perf_counter()
        two = sum(await asyncio.gather(drain(a, "hub-a"), drain(b, "hub-b")))
        two_s = time.perf_counter() - t0
        load_two = loadavg()
        async with a.engine.connect() as conn:
            entries = (await conn.execute(select(CaseEvent.case_id, func.count()).group_by(CaseEvent.case_id))).all()
        exact = one == args.due and two == args.due and all(count == 2 for _, count in entries) and len(entries) == args.due
        print()
        print("| what                                   | p50 ms  | p99 ms  | per s   | loadavg")
        print("|----------------------------------------|---------|---------|---------|----------------")
        print(f"| find due clocks: naive scan in Python  | {naive[0]:7.2f} | {naive[1]:7.2f} |         | {load_find}")
        print(f"| find due clocks: indexed claim (batch) | {indexed[0]:7.2f} | {indexed[1]:7.2f} |         | {load_find}")
        print(f"| reminders, one supervisor              |         |         | {one / one_s:7.0f} | {load_one}")
        print(f"| reminders, two supervisors racing      |         |         | {two / two_s:7.0f} | {load_two}")
        print(f"exactly one entry per due case per round: {exact} ({one} + {two} alerts, {len(entries)} cases)")
        result = {
            "cases": args.cases,
            "due": args.due,
            "claim_p99_ms": round(indexed[1], 3),
            "naive_find_p99_ms": round(naive[1], 3),
            "ratio_vs_naive": round(naive[1] / indexed[1], 1),
            "reminders_per_s": round(one / one_s, 1),
            "reminders_per_s_two_supervisors": round(two / two_s, 1),
            "exactly_once": exact,
            "loadavg": load_two,
        }
        return result
    finally:
        for engine in engines:
            await engine.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=2_000)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
