"""Glue for evidence clips and WHIP publishers (media and dispatch never import each other).

- flag raised (bus) → the media ClipRecorder records that camera's clip;
- clip ready / missing (bus) → dispatch stores it on the flag and its case;
- publisher status (media callback) → the bus, for consoles.
`evidence_ctx` sets all of it up after the media gateway exists and tears it down first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import ValidationError

from fusionhub.console.keys import BUS, CLIPS, CONFIG, DISPATCH, MEDIA
from fusionhub.console.wiring import StatusRelay
from fusionhub.dispatch.clips import FlagNotStored
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.clips import ClipRecorder, ClipResult
from fusionhub.signaling.bus import Bus, Event, Subscription
from fusionhub.signaling.messages import ClipMissing, ClipReady, FlagRaised, Topic, payload
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FLAG_WAIT_S = 120.0  # a clip whose flag is still not on record after this long is given up


class ClipTrigger:
    """Bus → media: each raised flag starts its clip (group "media-clips": one hub records it)."""

    def __init__(self, bus: Bus, recorder: ClipRecorder) -> None:
        self._bus = bus
        self._recorder = recorder
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sub = self._bus.subscribe([Topic.FLAG_RAISED], group="media-clips")
        self._task = asyncio.create_task(self._run(self._sub), name="clip-trigger")

    async def _run(self, sub: Subscription) -> None:
        async for event in sub:
            try:
                flag = FlagRaised.model_validate(event.data)
            except ValidationError:
                log.error("dropping malformed flag event %s", event.id)
            else:
                self._recorder.request(flag.flag_id, flag.camera_id, flag.raised_at)
            await sub.ack(event)  # a clip is best effort: it is never worth blocking the queue for

    async def stop(self) -> None:
        await _stop(self._task, self._sub)
        self._task, self._sub = None, None


class ClipIntake:
    """Bus → dispatch: clip results stored on the flag (and case); acknowledged once stored."""

    def __init__(self, bus: Bus, dispatch: DispatchService) -> None:
        self._bus = bus
        self._dispatch = dispatch
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sub = self._bus.subscribe([Topic.CLIP_READY, Topic.CLIP_MISSING], group="dispatch-clips")
        self._task = asyncio.create_task(self._run(self._sub), name="clip-intake")

    async def _run(self, sub: Subscription) -> None:
        async for event in sub:
            await self._store(event)
            await sub.ack(event)

    async def _store(self, event: Event) -> None:
        loop = asyncio.get_running_loop()
        started, delay = loop.time(), 0.5
        while True:
            try:
                if event.topic == Topic.CLIP_READY:
                    await self._dispatch.record_clip(ClipReady.model_validate(event.data))
                else:
                    await self._dispatch.mark_clip_missing(ClipMissing.model_validate(event.data))
                return
            except asyncio.CancelledError:
                raise
            except FlagNotStored:
                # the flag's own event is still on its way (or its store is retrying)
                if loop.time() - started > FLAG_WAIT_S:
                    log.error("clip event %s: flag %s never arrived; dropped", event.id, event.data.get("flag_id"))
                    return
            except (ValueError, ValidationError):
                log.error("dropping malformed clip event %s", event.id)
                return
            except Exception:
                log.exception("could not store clip event %s; retrying", event.id)  # the database is away
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def stop(self) -> None:
        await _stop(self._task, self._sub)
        self._task, self._sub = None, None


async def _stop(task: asyncio.Task[None] | None, sub: Subscription | None) -> None:
    await cancel_and_wait(task)
    if sub is not None:
        await sub.close()


async def evidence_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: clip recorder, its bus consumers, publisher statuses (after the media gateway)."""
    config, bus, media = app[CONFIG], app[BUS], app[MEDIA]

    async def publish_result(result: ClipResult) -> None:
        topic = Topic.CLIP_READY if isinstance(result, ClipReady) else Topic.CLIP_MISSING
        await bus.publish(topic, payload(result))

    recorder = ClipRecorder(config.media.recording, config.data_dir, ring_of=media.ring, on_result=publish_result)
    trigger = ClipTrigger(bus, recorder)
    intake = ClipIntake(bus, app[DISPATCH])
    statuses = StatusRelay(bus, maxsize=256, topic=Topic.PUBLISHER_STATUS)
    media.publishers.add_listener(statuses.on_status)
    app[CLIPS] = recorder
    statuses.start()
    intake.start()
    recorder.start()
    trigger.start()
    try:
        yield
    finally:
        errors = 0
        for step in (trigger.stop, recorder.stop, intake.stop, statuses.stop):
            try:
                await step()
            except Exception:  # logged; shutdown goes on
                errors += 1
                log.exception("error while stopping %s", step)
        if errors:
            log.warning("%d error(s) stopping the evidence wiring", errors)
