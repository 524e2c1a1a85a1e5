"""Glue for one-click tasking: the hub owns an escalator for as long as it runs.

Every hub process runs one; the database claims (dispatch/claims.py) make each escalation and
each outbox message happen once across all of them, and a restart picks up where the last run
stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from fusionhub.console.keys import BUS, DISPATCH, ESCALATOR
from fusionhub.dispatch.escalation import Escalator
from fusionhub.signaling.messages import Topic

ESCALATION_CHECK_S = 5.0  # how late an escalation may be, at most, beyond its due time


async def tasking_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: start the escalator after the records and the bus, stop it before them."""
    bus = app[BUS]

    async def publish(topic: Topic, data: dict[str, Any]) -> None:
        await bus.publish(topic, data)

    escalator = Escalator(app[DISPATCH], publish, interval_s=ESCALATION_CHECK_S)
    app[ESCALATOR] = escalator
    escalator.start()
    try:
        yield
    finally:
        await escalator.stop()
