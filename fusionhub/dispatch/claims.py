"""Due work kept in the database, done exactly once however many hub processes run, across restarts.

The pattern, shared by every supervisor loop of the dispatch package (instruction escalation,
case deadline reminders):

- what is due lives in rows (a `due_at`-style column), never only in memory, so a restart finds it;
- a process takes a row with a guarded UPDATE … WHERE <still undone> RETURNING id
  (`claim_rows`). The database re-checks the guard under the row lock, so of two processes
  racing for a row exactly one gets it back; the other's UPDATE matches nothing;
- when the work itself is a database change, it commits in the same transaction as the claim
  (the claim *is* the state change: pending → escalated), so it happens once or not at all;
- when the work happens outside the database (publishing on the bus), the claim is a lease
  (`lease_free` / `lease_until`): a process that dies holding it only delays the work until the
  lease lapses and another process takes it over (at-least-once, never lost);
- `DueLoop` runs a `tick` on an owned task: at an interval, at once after `poke()`, again
  straight away while a tick reports a full batch, with backoff while the database is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fusionhub.tasks import cancel_and_wait, wait_event

log = logging.getLogger(__name__)


async def claim_rows(
    session: AsyncSession,
    model: Any,
    *,
    candidates: Select[Any],
    guard: ColumnElement[bool],
    values: Mapping[Any, Any],
    skip_locked: bool = False,
) -> list[int]:
    """SELECT the candidate ids, then UPDATE model SET values WHERE id IN (them) AND guard
    RETURNING id: the ids this session won, sorted.

    `candidates` selects ids (they may be stale by the time the rows are locked: that is fine);
    `guard` must say "still undone", so that the database's re-check under the row lock refuses
    a row another process claimed meanwhile. Run it inside the transaction that does the work.

    `skip_locked` (for queue-like work, "take any due rows"): on PostgreSQL the candidates are
    picked FOR UPDATE SKIP LOCKED, so concurrent claimers take different rows instead of queueing
    on the same ones and coming back empty. Leave it off where the loser must wait for the winner
    (a person's action on one row: the loser is then told who was first). SQLite serialises
    writers anyway (BEGIN IMMEDIATE).
    """
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    # two statements, not UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED): PostgreSQL may
    # rescan such a subquery per row and then skip the rows this very statement has just changed
    ids = [int(i) for i in await session.scalars(candidates)]
    if not ids:
        return []
    stmt = (
        update(model)
        .where(model.id.in_(ids), guard)
        .values(dict(values))
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return sorted(int(row_id) for row_id in result.scalars())


def lease_free(until: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    """The guard of a lease: nobody holds it, or the holder's lease has lapsed."""
    return or_(until.is_(None), until < now)


def lease_until(now: datetime, lease_s: float) -> datetime:
    """When a lease taken now lapses."""
    return now + timedelta(seconds=lease_s)


Tick = Callable[[], Awaitable[bool]]


class DueLoop:
    """Runs `tick` on a task it owns: every `interval_s`, at once after `poke()`, and straight
    again while `tick` returns True (it did a full batch, more may be due).

    A failing tick is logged and retried with backoff (doubling up to `max_backoff_s`); the loop
    never dies of it. `stop()` cancels and awaits the task; safe to call twice.
    """

    def __init__(self, name: str, tick: Tick, *, interval_s: float, max_backoff_s: float = 60.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.name = name
        self._tick = tick
        self._interval_s = interval_s
        self._max_backoff_s = max(max_backoff_s, interval_s)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.failures = 0

    @property
    def running(self) -> bool:
        """Whether the loop's task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (once; a second call while running does nothing)."""
        if self.running:
            return
        self._task = asyncio.create_task(self._run(), name=f"due-loop-{self.name}")

    def poke(self) -> None:
        """Run a tick as soon as possible (e.g. right after new due work was written)."""
        self._wake.set()

    async def stop(self) -> None:
        """Cancel the task and wait for it; safe to call twice."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        streak = 0  # failed ticks in a row
        while True:
            self._wake.clear()
            more = False
            delay = self._interval_s
            try:
                more = await self._tick()
                self.ticks += 1
                streak = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                delay = min(self._interval_s * 2 ** min(streak, 16), self._max_backoff_s)
                streak += 1
                log.exception("%s: tick failed; retrying in %.1f s", self.name, delay)
            if more:
                await asyncio.sleep(0)  # let others run between full batches
                continue
            await wait_event(self._wake, delay)
