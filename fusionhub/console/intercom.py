"""Glue for push-to-talk: the intercom (media) publishes recorded bursts on the bus; dispatch stores them.

Media never imports dispatch: a burst travels as a `PttBurst` on `Topic.PTT_BURST`, and
a `BusIntake` (its own consumer group) stores each one, acknowledging only after it is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from fusionhub.console.busintake import BusIntake
from fusionhub.console.keys import BUS, CONFIG, DISPATCH, INTERCOM
from fusionhub.media.ice import rtc_configuration
from fusionhub.media.intercom import Intercom
from fusionhub.signaling.messages import PttBurst, Topic, payload

log = logging.getLogger(__name__)


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
    intake: BusIntake[PttBurst] = BusIntake(
        bus, Topic.PTT_BURST, "dispatch-ptt", PttBurst, app[DISPATCH].record_ptt_burst
    )
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
