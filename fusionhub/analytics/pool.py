"""Local worker processes: spawn, watch, replace. The hub's routing never depends on them being local."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

from fusionhub.analytics.config import WorkerConfig
from fusionhub.analytics.worker import worker_process
from fusionhub.tasks import wait_event

log = logging.getLogger(__name__)

SHORT_LIFE_S = 10.0  # a worker that dies younger than this is flapping: back off harder
MAX_BACKOFF_S = 30.0


@dataclass
class _Slot:
    index: int
    process: SpawnProcess | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff_s: float = 0.0


class LocalWorkers:
    """`count` worker child processes (spawn context), each replaced when it dies."""

    def __init__(self, count: int, make_config: WorkerConfigFactory, *, backoff_s: float) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._stop: MpEvent = self._ctx.Event()
        self._make_config = make_config
        self._base_backoff = backoff_s
        self._slots = [_Slot(i) for i in range(count)]
        self.restarts = 0
        # the CPUs the hub may run on, as its creating thread sees them: a child starts with the
        # affinity of the thread that starts it (one of the loop's executor threads here), so a
        # thread some library pinned to one core would tie every worker it starts to that core
        self._cpus = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None

    def pids(self) -> list[int]:
        """Pids of the live workers."""
        return [s.process.pid for s in self._slots if s.process is not None and s.process.pid is not None]

    async def start(self) -> None:
        """Start every worker (process start-up runs in a thread: it forks and writes a pickle)."""
        for slot in self._slots:
            await self._spawn(slot)

    async def check(self) -> list[int]:
        """Reap dead workers, replace those whose back-off is over; returns the pids that died."""
        died: list[int] = []
        now = time.monotonic()
        for slot in self._slots:
            proc = slot.process
            if proc is not None and not proc.is_alive():
                pid = proc.pid or -1
                died.append(pid)
                lived = now - slot.started_at
                slot.backoff_s = (
                    min(MAX_BACKOFF_S, max(self._base_backoff, slot.backoff_s * 2))
                    if lived < SHORT_LIFE_S
                    else self._base_backoff
                )
                log.warning(
                    "analytics worker %d (pid %d) exited with %s after %.1f s; replacing it in %.1f s",
                    slot.index, pid, proc.exitcode, lived, slot.backoff_s,
                )
                proc.close()
                slot.process = None
                slot.restart_at = now + slot.backoff_s
            if slot.process is None and now >= slot.restart_at and not self._stop.is_set():
                self.restarts += 1
                await self._spawn(slot)
        return died

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Ask every worker to stop, wait, then terminate (and kill) stragglers. Safe to call twice."""
        self._stop.set()
        procs = [s.process for s in self._slots if s.process is not None]
        for slot in self._slots:
            slot.process = None
        await asyncio.to_thread(_reap, procs, timeout_s)

    async def _spawn(self, slot: _Slot) -> None:
        config = self._make_config(slot.index)
        proc = self._ctx.Process(
            target=worker_process,
            args=(config, self._stop, os.getpid(), logging.getLogger("fusionhub").getEffectiveLevel(), self._cpus),
            name=f"fusionhub-analytics-{slot.index}",
            daemon=True,  # never outlive the hub, whatever happens to it
        )
        await asyncio.to_thread(proc.start)
        slot.process = proc
        slot.started_at = time.monotonic()
        log.info("analytics worker %d started (pid %s)", slot.index, proc.pid)


def _reap(procs: list[SpawnProcess], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            log.warning("analytics worker pid %s did not stop; terminating it", proc.pid)
            proc.terminate()
            proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
        if not proc.is_alive():
            proc.close()


class WorkerConfigFactory:
    """Builds the WorkerConfig of local worker number i (picklable, no closures)."""

    def __init__(self, base: WorkerConfig, prefix: str = "local") -> None:
        self._base = base
        self._prefix = prefix

    def __call__(self, index: int) -> WorkerConfig:
        return self._base.model_copy(update={"name": f"{self._prefix}-{index}"})


SUPERVISE_S = 0.5


async def serve_pool(base: WorkerConfig, processes: int, stop: asyncio.Event, *, backoff_s: float = 1.0) -> None:
    """`processes` workers for a (remote) hub, each replaced when it dies, until `stop` is set.

    What `fusionhub worker --processes N` runs: a worker killed with kill -9 is back within
    `backoff_s`, and the hub gives its frame to another worker meanwhile.
    """
    with tempfile.TemporaryDirectory(prefix="fusionhub-pool-") as tmp:
        # the pool's workers share one `auto` runtime choice (see runtime._cheapest)
        base = base.model_copy(update={"auto_choice": Path(tmp) / "auto-runtime.json"})
        pool = LocalWorkers(processes, WorkerConfigFactory(base, prefix=base.name), backoff_s=backoff_s)
        await pool.start()
        try:
            while not stop.is_set():
                await wait_event(stop, SUPERVISE_S)
                await pool.check()
        finally:
            await pool.stop()
