"""Admission control for WHEP viewers: set-ups never starve the viewers already watching.

Setting a viewer up (certificate, SDP, ICE checks, DTLS handshake) costs the event loop far
more than a frame sent to a live viewer. `SetupGate` lets `max_concurrent_setups` run at once;
more wait in a bounded FIFO for at most `setup_wait_s`; past either bound the offer is refused
with GatewayFull (503 + Retry-After) instead of queueing without limit. `LoopLagMonitor` tells
how late the loop runs its timers: when that average passes `max_loop_lag_ms` the hub is
saturated, and a new viewer would slow every live one: the offer waits (in the same bounded
queue) for the loop to catch up, and is refused only when it is still late when the wait ends,
so a moment's stall delays a set-up instead of failing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from fusionhub.media.errors import GatewayFull
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LAG_POLL_S = 0.05  # how often an offer waiting for a late loop looks again


class LoopLagMonitor:
    """Exponentially weighted average of how late the event loop wakes a periodic timer."""

    def __init__(self, *, interval_s: float = 0.1, alpha: float = 0.2) -> None:
        self._interval_s = interval_s
        self._alpha = alpha
        self._task: asyncio.Task[None] | None = None
        self.lag_ms = 0.0  # smoothed lateness
        self.max_lag_ms = 0.0  # worst single lateness seen

    def start(self) -> None:
        """Start measuring on the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="media-loop-lag")

    async def stop(self) -> None:
        """Stop measuring (idempotent)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self._interval_s)
            late_ms = max(0.0, (loop.time() - before - self._interval_s) * 1000)
            self.lag_ms += self._alpha * (late_ms - self.lag_ms)
            self.max_lag_ms = max(self.max_lag_ms, late_ms)


class SetupSlot:
    """A place in the gate, held from the offer until the viewer is connected or gone."""

    def __init__(self, gate: SetupGate) -> None:
        self._gate: SetupGate | None = gate

    def release(self) -> None:
        """Give the place back (idempotent)."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release()


class SetupGate:
    """At most `slots` set-ups at once, a bounded FIFO behind them, refusals as GatewayFull."""

    def __init__(
        self,
        *,
        slots: int,
        queue: int,
        wait_s: float,
        retry_after_s: int,
        lag: LoopLagMonitor | None = None,
        max_lag_ms: float = 0.0,
    ) -> None:
        if slots < 1 or queue < 0:
            raise ValueError("slots >= 1 and queue >= 0 required")
        self._slots = slots
        self._queue = queue
        self._wait_s = wait_s
        self._retry_after_s = retry_after_s
        self._lag = lag
        self._max_lag_ms = max_lag_ms
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._lag_waiting = 0  # offers waiting for the loop to catch up
        self.refused_queue_full = 0
        self.refused_wait = 0
        self.refused_lag = 0
        self.admitted = 0

    @property
    def active(self) -> int:
        """Set-ups holding a place now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Offers waiting for a place or for the loop to catch up."""
        return self._queued() + self._lag_waiting

    def _queued(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    def _refuse(self, why: str) -> GatewayFull:
        return GatewayFull(f"the hub is {why}; try again in {self._retry_after_s} s", retry_after_s=self._retry_after_s)

    def _lagging(self) -> bool:
        return self._lag is not None and self._max_lag_ms > 0 and self._lag.lag_ms > self._max_lag_ms

    async def acquire(self) -> SetupSlot:
        """A place for one set-up; raises GatewayFull when the hub stays saturated, or the queue is
        full, or no place frees up within the wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        if self._lagging():
            await self._wait_out_lag(deadline)
        if self._active < self._slots and not self._queued():
            self._active += 1
            self.admitted += 1
            return SetupSlot(self)
        if self.waiting >= self._queue:
            self.refused_queue_full += 1
            raise self._refuse("busy setting up other viewers")
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout_at(deadline):
                await fut
        except (TimeoutError, asyncio.CancelledError) as exc:
            if fut.done() and not fut.cancelled():
                self._release()  # the place was handed over just as the wait ended: pass it on
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.refused_wait += 1
            raise self._refuse("busy setting up other viewers") from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)
        self.admitted += 1
        return SetupSlot(self)

    async def _wait_out_lag(self, deadline: float) -> None:
        """The loop runs late: a moment's stall (a collection, a burst of work) passes within the
        wait and the offer goes on; a loop that stays late past `deadline` is saturated and the
        offer is refused. The offers waiting here count against the queue bound."""
        if self.waiting >= self._queue:
            self.refused_lag += 1
            raise self._refuse("saturated (its event loop runs late)")
        assert self._lag is not None
        log.debug("an offer waits: the event loop runs %.0f ms late", self._lag.lag_ms)
        loop = asyncio.get_running_loop()
        self._lag_waiting += 1
        try:
            while self._lagging():
                if loop.time() >= deadline:
                    self.refused_lag += 1
                    raise self._refuse("saturated (its event loop runs late)")
                await asyncio.sleep(min(LAG_POLL_S, max(0.0, deadline - loop.time())))
        finally:
            self._lag_waiting -= 1

    def _release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the place passes straight to the next in line
                return
        self._active -= 1

    def stats(self) -> dict[str, int]:
        """Counters for monitoring."""
        return {
            "setting_up": self._active,
            "waiting": self.waiting,
            "admitted": self.admitted,
            "refused_queue_full": self.refused_queue_full,
            "refused_wait": self.refused_wait,
            "refused_lag": self.refused_lag,
        }
