"""Glue for push-to-talk: the intercom (media) publishes recorded bursts on the bus; dispatch stores them.

Media never imports dispatch: a burst travels as a `PttBurst` on `Topic.PTT_BURST`, and
`BurstIntake` (its own consumer group) stores each one, acknowledging only after it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from fusionhub.console.keys import BUS, CONFIG, DISPATCH, INTERCOM
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.ice import rtc_configuration
from fusionhub.media.intercom import Intercom
from fusionhub.signaling.bus import Bus, Subscription
from fusionhub.signaling.messages import PttBurst, Topic, payload

log = logging.getLogger(__name__)


class BurstIntake:
    """Bus → dispatch: every recorded burst is stored once (a row, and a case timeline entry)."""

    def __init__(self, bus: Bus, dispatch: DispatchService) -> None:
        self._bus = bus
        self._dispatch = dispatch
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (the group exists when this returns) and start storing."""
        if self._task is not None:
            return
        self._sub = self._bus.subscribe([Topic.PTT_BURST], group="dispatch-ptt")
        await self._sub.ready()
        self._task = asyncio.create_task(self._run(self._sub), name="ptt-burst-intake")

    async def _run(self, sub: Subscription) -> None:
        async for event in sub:
            delay = 0.5
            while True:
                try:
                    await self._dispatch.record_ptt_burst(PttBurst.model_validate(event.data))
                    break
                except asyncio.CancelledError:
                    raise
                except ValueError:
                    log.error("dropping malformed burst event %s", event.id)
                    break
                except Exception:
                    # the database is away: keep the event (unacknowledged) and retry
                    log.exception("could not store burst %s; retrying", event.data.get("burst_id"))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            await sub.ack(event)

    async def stop(self) -> None:
        """Stop storing and leave the group (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.close()


async def intercom_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the intercom and its burst intake (after media, which pins the ICE addresses)."""
    config = app[CONFIG]
    bus = app[BUS]

    async def on_burst(burst: PttBurst) -> None:
        await bus.publish(Topic.PTT_BURST, payload(burst))

    intercom = Intercom(
        config.intercom,
        rtc=lambda: rtc_configuration(config.media),
        data_dir=config.data_dir,
        on_burst=on_burst,
    )
    intake = BurstIntake(bus, app[DISPATCH])
    await intake.start()
    await intercom.start()
    app[INTERCOM] = intercom
    try:
        yield
    finally:
        # the intercom first: its last bursts are written and published before the intake stops
        try:
            await intercom.stop()
        except Exception:
            log.exception("error while stopping the intercom")
        await intake.stop()
