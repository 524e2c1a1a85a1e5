"""cancel_and_wait: stopping background tasks without swallowing the stopper's own cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fusionhub.tasks import cancel_and_wait, raise_if_cancel_requested, wait_event
from tests.support.cancels import drop_own_cancel


async def _slow_to_stop(stopped: asyncio.Event) -> None:
    """A background task whose clean-up takes a while once cancelled (a TEARDOWN, a flush...)."""
    try:
        await asyncio.sleep(3600)
    finally:
        await asyncio.sleep(0.3)
        stopped.set()


async def test_a_stopper_that_is_cancelled_while_it_waits_is_cancelled_not_carried_on() -> None:
    stopped = asyncio.Event()
    background = asyncio.create_task(_slow_to_stop(stopped))
    await asyncio.sleep(0)
    carried_on = False

    async def stopper() -> None:
        nonlocal carried_on
        await cancel_and_wait(background)
        carried_on = True  # with `suppress(CancelledError): await background` this line ran

    task = asyncio.create_task(stopper())
    await asyncio.sleep(0.05)  # the stopper is waiting for the background task's clean-up
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not carried_on
    assert not stopped.is_set()  # the stopper ended at once; the background task still ends by itself
    await asyncio.wait_for(stopped.wait(), 2)
    assert background.cancelled()


async def test_a_timeout_around_a_stop_fires() -> None:
    stopped = asyncio.Event()
    background = asyncio.create_task(_slow_to_stop(stopped))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await cancel_and_wait(background)
    await asyncio.wait_for(stopped.wait(), 2)


async def test_every_task_ends_and_an_error_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("the loop had died")

    broken = asyncio.create_task(fails(), name="broken-loop")
    idle = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0.01)  # `broken` has failed before the stop
    with caplog.at_level(logging.ERROR, logger="fusionhub.tasks"):
        await cancel_and_wait(broken, None, idle)
    assert idle.cancelled() and broken.done()
    assert "broken-loop ended with an error" in caplog.text and "the loop had died" in caplog.text


async def test_a_quiet_stop_keeps_expected_errors_out_of_the_error_log(caplog: pytest.LogCaptureFixture) -> None:
    async def peer_gone() -> None:
        raise ConnectionResetError("the publisher went away")

    broken = asyncio.create_task(peer_gone(), name="reader")
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.DEBUG, logger="fusionhub.tasks"):
        await cancel_and_wait(broken, quiet=True)
    assert [r.levelno for r in caplog.records if "reader ended with an error" in r.getMessage()] == [logging.DEBUG]


async def test_a_dropped_cancel_is_raised_again_and_a_timeout_is_not_taken_for_one() -> None:
    """A task whose cancel a library dropped (3.11's wait_for) still counts the request: the
    helper raises it. A cancel that asyncio.timeout used for its own deadline is not a request to
    stop, and neither is nothing at all."""
    steps: list[str] = []

    async def dropped() -> None:
        if await drop_own_cancel():
            steps.append("dropped")
        raise_if_cancel_requested()
        steps.append("carried on")

    task = asyncio.create_task(dropped())
    await asyncio.wait([task])
    assert task.cancelled() and steps == ["dropped"]

    async def timed_out() -> str:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        raise_if_cancel_requested()
        return "went on"

    assert await asyncio.create_task(timed_out()) == "went on"
    raise_if_cancel_requested()  # this test's own task was never asked to stop


async def test_wait_event_keeps_a_cancel_that_comes_as_the_event_is_set() -> None:
    """A loop that sleeps until woken, stopped at the moment it is woken, stops (3.11's
    wait_for returned as if woken, the loop went round again, and its stopper waited for ever)."""
    wake = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await wait_event(wake, 10)
            wake.clear()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    wake.set()
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.cancelled() and rounds == 0
    wake.clear()
    assert await wait_event(wake, 0.01) is False
    wake.set()
    assert await wait_event(wake, None) is True
