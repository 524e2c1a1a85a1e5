"""Staging the cancel that Python 3.11's asyncio.wait_for drops (see fusionhub.tasks)."""

from __future__ import annotations

import asyncio


async def drop_own_cancel() -> bool:
    """Cancel the running task and swallow the CancelledError, as 3.11's wait_for does when its
    future finishes at the same moment. The task still counts the request (`Task.cancelling()`).
    True once the cancel came and was dropped."""
    me = asyncio.current_task()
    assert me is not None
    me.cancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        return True
    return False
