"""LoopHandoff: source threads hand calls to the event loop in batches, not one wake-up each.

`loop.call_soon_threadsafe` writes to the loop's self-pipe on every call, and the loop wakes
for each write. A 25 fps camera posts 25+ packets a second, so a hub with many cameras would
pay a syscall on the thread side and a loop wake-up on the other for every packet. Here the
first post after a drain wakes the loop; the loop waits `window_s` for the rest of the batch,
then runs every queued call in the order it was posted. Calls from one thread keep their order
(one FIFO for all threads), and none is left behind: the drain clears the flag before it pops,
so a post that lands during a drain either sees the flag down and wakes the loop again, or was
posted before the pops and is among them.

The queue is bounded by its posters: sources count what they posted against what was
delivered and drop (to the next keyframe) past their own limit, as they did with plain calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Half a frame interval at 25 fps (40 ms) and far below what a viewer or the sampler notices;
# long enough that the packets of many cameras share one wake-up.
DEFAULT_WINDOW_S = 0.002


class LoopHandoff:
    """Thread-safe `post(fn, *args)`: runs `fn(*args)` on `loop`, in order, batched per wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, window_s: float = DEFAULT_WINDOW_S) -> None:
        self._loop = loop
        self._window_s = window_s
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._armed = False  # a drain is scheduled (or running before its pops)
        self.wakeups = 0  # loop wake-ups so far (each ran one batch)
        self.calls = 0  # calls run so far

    def post(self, fn: Callable[..., Any], *args: Any) -> bool:
        """From any thread; False when the loop is closed (nothing will run any more)."""
        if self._loop.is_closed():
            return False
        self._calls.append((fn, args))  # deque.append is atomic
        if self._armed:
            return True
        self._armed = True  # two threads may both get here: the second drain finds less to do
        try:
            self._loop.call_soon_threadsafe(self._arm)
        except RuntimeError:  # closed between the check and the call
            return False
        return True

    def _arm(self) -> None:
        if self._window_s > 0:
            self._loop.call_later(self._window_s, self._drain)
        else:
            self._drain()

    def _drain(self) -> None:
        self._armed = False  # before popping: a later post wakes the loop again
        self.wakeups += 1
        calls = self._calls
        # only what is queued now: posters that keep posting cannot hold the loop here
        for _ in range(len(calls)):
            fn, args = calls.popleft()
            self.calls += 1
            try:
                fn(*args)
            except Exception as exc:  # one failing call must not drop the rest of the batch
                self._loop.call_exception_handler(
                    {"message": f"exception in {getattr(fn, '__qualname__', fn)!s} handed to the loop", "exception": exc}
                )
