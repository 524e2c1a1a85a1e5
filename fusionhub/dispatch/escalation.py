"""The escalator: a hub-owned loop that escalates unacknowledged instruction recipients and relays
the outbox. Every hub process may run one; the database claims keep the work exactly-once."""

from __future__ import annotations

import logging

from fusionhub.dispatch.claims import DueLoop
from fusionhub.dispatch.core import Publish
from fusionhub.dispatch.instructions import InstructionService
from fusionhub.dispatch.outbox import relay_outbox

log = logging.getLogger(__name__)


class Escalator:
    """`start()` / `stop()` (safe twice); `run_once()` does one round, for tests and tools."""

    def __init__(
        self, service: InstructionService, publish: Publish, *, interval_s: float = 5.0, batch: int = 100
    ) -> None:
        self._service = service
        self._publish = publish
        self._batch = batch
        self._loop = DueLoop("escalator", self.run_once, interval_s=interval_s)

    async def run_once(self) -> bool:
        """Escalate what is due, then publish the outbox; True when a batch was full (more may wait)."""
        escalated = await self._service.escalate_due(limit=self._batch)
        relayed = await relay_outbox(self._service, self._publish, limit=self._batch)
        return escalated >= self._batch or relayed >= self._batch

    def start(self) -> None:
        """Start the loop."""
        self._loop.start()

    def poke(self) -> None:
        """Check now rather than at the next interval."""
        self._loop.poke()

    async def stop(self) -> None:
        """Stop the loop; safe to call twice."""
        await self._loop.stop()
