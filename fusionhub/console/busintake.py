"""Bus → dispatch for record events: each event is stored once, acknowledged only once stored.

`BusIntake` joins its own consumer group on one topic; an event that does not validate (or that
dispatch finds unusable: a ValueError) is logged and dropped; any other failure (the database is
away) keeps the event unacknowledged and retries it with back-off, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pydantic import BaseModel

from fusionhub.signaling.bus import Bus, Subscription
from fusionhub.signaling.messages import Topic
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class BusIntake(Generic[M]):
    """Consume `topic` in consumer group `group`, handing each event as a `model` to `store`."""

    def __init__(
        self,
        bus: Bus,
        topic: Topic,
        group: str,
        model: type[M],
        store: Callable[[M], Awaitable[object]],
        *,
        transient: bool = False,
    ) -> None:
        self._bus = bus
        self._transient = transient  # the group is this process's alone (bus.process_group)
        self._topic = topic
        self._group = group
        self._model = model
        self._store = store
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (the group exists when this returns) and start storing."""
        if self._task is not None:
            return
        self._sub = self._bus.subscribe([self._topic], group=self._group, transient=self._transient)
        await self._sub.ready()
        self._task = asyncio.create_task(self._run(self._sub), name=f"intake-{self._group}")

    async def _run(self, sub: Subscription) -> None:
        async for event in sub:
            delay = 0.5
            while True:
                try:
                    await self._store(self._model.model_validate(event.data))
                    break
                except asyncio.CancelledError:
                    raise
                except ValueError:
                    log.error("%s: dropping malformed event %s", self._group, event.id)
                    break
                except Exception:
                    log.exception("%s: could not store event %s; retrying", self._group, event.id)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            await sub.ack(event)

    async def stop(self) -> None:
        """Stop storing and leave the group (idempotent)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.close()
