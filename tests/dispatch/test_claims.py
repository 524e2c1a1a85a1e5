"""DueLoop, the owned task every supervisor loop runs on: ticks at its interval, at once when
poked, straight again after a full batch, survives failing ticks, stops cleanly (twice)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fusionhub.dispatch.claims import DueLoop


async def _until(check: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_ticks_at_start_when_poked_and_again_after_a_full_batch() -> None:
    calls: list[float] = []
    backlog = [True, True, False]  # two full batches, then done

    async def tick() -> bool:
        calls.append(asyncio.get_running_loop().time())
        return backlog.pop(0) if backlog else False

    loop = DueLoop("test", tick, interval_s=30.0)
    loop.start()
    loop.start()  # a second start while running does nothing
    await _until(lambda: len(calls) == 3)  # the first tick and the two straight after full batches
    await asyncio.sleep(0.05)
    assert len(calls) == 3  # then it waits for the interval (30 s) ...
    loop.poke()
    await _until(lambda: len(calls) == 4)  # ... unless poked
    assert loop.running and loop.ticks == 4
    await loop.stop()
    await loop.stop()
    assert not loop.running


async def test_a_failing_tick_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[Exception | None] = [RuntimeError("database away"), RuntimeError("still away"), None]

    async def tick() -> bool:
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome
        return False

    with caplog.at_level(logging.ERROR, logger="fusionhub.dispatch.claims"):
        loop = DueLoop("flaky", tick, interval_s=0.01, max_backoff_s=0.05)
        loop.start()
        await _until(lambda: loop.ticks >= 1)
        await loop.stop()
    assert loop.failures == 2
    assert sum("flaky: tick failed" in r.getMessage() for r in caplog.records) == 2


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DueLoop("bad", lambda: asyncio.sleep(0, False), interval_s=0)
