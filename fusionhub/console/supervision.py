"""Glue for the deadline supervisor: the hub owns one for as long as it runs.

Every hub process runs one; the database claims (dispatch/supervision.py) make each warning and
reminder happen once across all of them, and a restart picks up where the last run stopped. The
alerts go through the outbox, which the tasking escalator relays; the supervisor pokes it so they
go out at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fusionhub.console.keys import DISPATCH, ESCALATOR, SUPERVISOR
from fusionhub.dispatch.supervision import Supervisor


async def supervision_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: start the supervisor after the records (and the outbox relay), stop it before them."""
    service = app[DISPATCH]
    await service.catalog.reload_if_changed()
    escalator = app.get(ESCALATOR)
    supervisor = Supervisor(service, relay=escalator.poke if escalator is not None else None)
    app[SUPERVISOR] = supervisor
    supervisor.start()
    try:
        yield
    finally:
        await supervisor.stop()
