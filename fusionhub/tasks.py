"""Stopping background tasks without swallowing the caller's own cancellation.

`task.cancel()` then `await task` under `suppress(CancelledError)` has a trap: if the task that
is stopping things is itself cancelled while it waits (a shutdown under `asyncio.timeout`, a
request handler whose client went away), the suppress swallows that cancellation too, and the
caller carries on as if nobody had asked it to stop (a timeout never fires, a shutdown hangs).
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["cancel_and_wait", "raise_if_cancel_requested", "wait_event"]

log = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[object] | None, quiet: bool = False) -> None:
    """Cancel `tasks` (None skipped) and wait until every one has ended.

    The caller's own cancellation is never swallowed: it propagates at once, and the tasks go on
    ending by themselves. A task that ended with an error rather than by cancellation has the
    error logged (with its traceback), not raised: a stop goes on with its next step. With
    `quiet`, at debug level: for tasks whose errors are expected when their peer goes away."""
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    if not pending:
        return
    await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.log(logging.DEBUG if quiet else logging.ERROR, "task %s ended with an error, not by being stopped",
                    task.get_name(), exc_info=exc)


def raise_if_cancel_requested() -> None:
    """Raise CancelledError if the running task was asked to stop and the request got lost.

    Python 3.11's `asyncio.wait_for` returns the result of an inner future that finished at the
    moment its task was cancelled, and drops the cancellation. redis-py writes every command
    under it, so a reader cancelled just as a command went out read on for ever, and whoever
    waited for it to stop (a hub shutting down) hung. The task still counts the request
    (`Task.cancelling()`): a loop calls this at each turn to honour it there."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set or `timeout` seconds have passed (None: no limit); True if it was set.

    For loops that sleep until woken. On Python 3.11, `asyncio.wait_for(event.wait(), t)` drops a
    cancel that comes as the event is set (always, not by chance): the loop goes round again and
    whoever stops it waits for ever. asyncio.timeout keeps the cancel."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
