"""LoopHandoff: calls from source threads reach the loop complete, in order, a batch per wake-up."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from fusionhub.media.handoff import LoopHandoff


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_calls_from_many_threads_all_arrive_each_thread_in_order() -> None:
    handoff = LoopHandoff(asyncio.get_running_loop())
    seen: dict[int, list[int]] = {t: [] for t in range(4)}

    def producer(t: int) -> None:
        for n in range(2000):
            assert handoff.post(seen[t].append, n)
            if n % 97 == 0:
                time.sleep(0.001)  # some posts land while a drain runs

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    await asyncio.to_thread(lambda: [th.join() for th in threads])
    await _until(lambda: all(len(v) == 2000 for v in seen.values()))
    assert all(v == list(range(2000)) for v in seen.values())  # nothing lost, nothing reordered
    assert handoff.calls == 8000


async def test_posts_while_the_loop_is_busy_share_one_wake_up() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    got: list[int] = []

    def producer() -> None:
        for n in range(300):
            handoff.post(got.append, n)

    th = threading.Thread(target=producer)
    th.start()
    th.join()  # the loop is held here, as by a busy moment: every post is queued meanwhile
    await _until(lambda: len(got) == 300)
    assert got == list(range(300))
    assert handoff.wakeups == 1


async def test_a_failing_call_is_reported_and_the_rest_of_the_batch_still_runs() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        handoff = LoopHandoff(loop)
        got: list[str] = []

        def boom() -> None:
            raise ValueError("bad packet")

        def producer() -> None:
            handoff.post(got.append, "before")
            handoff.post(boom)
            handoff.post(got.append, "after")

        th = threading.Thread(target=producer)
        th.start()
        th.join()
        await _until(lambda: len(got) == 2)
        assert got == ["before", "after"]
        assert len(reported) == 1 and isinstance(reported[0]["exception"], ValueError)
    finally:
        loop.set_exception_handler(None)


def test_posting_to_a_closed_loop_says_so() -> None:
    loop = asyncio.new_event_loop()
    handoff = LoopHandoff(loop)
    loop.close()
    assert handoff.post(print, "nobody listens") is False
