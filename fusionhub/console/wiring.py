"""The glue between packages that never import each other: camera records → media and analytics,
media status → bus, analytics flags → bus → dispatch."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from fusionhub.analytics.config import CameraAnalysis
from fusionhub.analytics.hub import AnalyticsHub
from fusionhub.analytics.rules import ZoneSpec
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.sampling import SamplingOptions
from fusionhub.media.urls import with_credentials_of
from fusionhub.signaling.bus import Bus
from fusionhub.signaling.messages import CameraStatus, PublisherStatus, Topic, payload
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DEMO_SCHEME = "demo:"


class CameraWiring:
    """Keeps the media gateway and the analytics hub in step with the camera records."""

    def __init__(
        self,
        dispatch: DispatchService,
        media: MediaGateway,
        analytics: AnalyticsHub,
        *,
        demo_dir: Path,
    ) -> None:
        self._dispatch = dispatch
        self._media = media
        self._analytics = analytics
        self._demo_dir = demo_dir
        self._regions: dict[int, str] = {}
        self._active: set[int] = set()

    def region_of(self, camera_id: int) -> str | None:
        """The region of a camera, for filtering status events per user."""
        return self._regions.get(camera_id)

    async def sync_all(self) -> None:
        """Start every enabled camera on record (at hub start)."""
        for cam in await self._dispatch.all_cameras_internal():
            await self._apply(cam)

    async def refresh(self, camera_id: int) -> None:
        """Re-read one camera after it was created or changed through the API."""
        for cam in await self._dispatch.all_cameras_internal():
            if cam["id"] == camera_id:
                await self._apply(cam)
                return
        await self.forget(camera_id)

    async def forget(self, camera_id: int) -> None:
        """Stop pulling and analysing a camera that was deleted or disabled."""
        self._regions.pop(camera_id, None)
        self._analytics.remove_camera(camera_id)
        self._analytics.configure_camera(camera_id, None)
        self._analytics.rule_env.drop_references(camera_id)
        if camera_id in self._active:
            self._active.discard(camera_id)
            await self._media.remove_camera(camera_id)

    async def _apply(self, cam: dict[str, Any]) -> None:
        camera_id = int(cam["id"])
        if not cam.get("enabled", True):
            await self.forget(camera_id)
            return
        self._regions[camera_id] = cam["region"]
        url: str = cam["url"]
        sampling = SamplingOptions.model_validate(cam["sampling"]) if cam.get("sampling") else None
        if url.startswith(DEMO_SCHEME):
            # the built-in demo camera: a generated clip, never reachable from the API
            await self._media.add_file_camera(
                camera_id, self._demo_dir / f"{url[len(DEMO_SCHEME):]}.mp4", sampling=sampling
            )
        else:
            sub = cam.get("substream_url")
            await self._media.add_camera(
                camera_id, url, sampling=sampling, substream_url=with_credentials_of(sub, url) if sub else None
            )
        self._active.add(camera_id)
        analysis = cam.get("analysis")
        self._analytics.configure_camera(camera_id, CameraAnalysis.model_validate(analysis) if analysis else None)
        zones = [zone_spec(z) for z in cam.get("zones", [])]
        # bin zones' reference pictures are read in a thread before the rules need them
        await self._analytics.rule_env.load_references(camera_id, zones, self._analytics.data_dir)
        self._analytics.set_zones(camera_id, zones)
        # a camera with zones is analysed, so always pulled; others only while someone watches
        self._media.set_analytics_need(camera_id, bool(zones))


def zone_spec(zone: dict[str, Any]) -> ZoneSpec:
    """A zone record (the API's Zone shape plus `reference_path`) as the analytics rules take it."""
    return ZoneSpec(
        id=zone["id"],
        name=zone["name"],
        kind=zone.get("kind", "road"),
        rule=zone.get("rule"),
        polygon=[(float(x), float(y)) for x, y in zone["polygon"]],
        dwell_s=float(zone["dwell_s"]),
        classes=list(zone["classes"]) if zone.get("classes") else None,
        min_count=int(zone.get("min_count") or 1),
        windows=list(zone.get("windows") or []),
        realert_s=zone.get("realert_s"),
        threshold=zone.get("threshold"),
        reference=zone.get("reference_path"),
    )


class StatusRelay:
    """Media calls back synchronously on the loop; this forwards statuses to the bus in order.

    The queue is bounded; when it is full the oldest status of the same camera is superseded
    anyway, so a full queue drops the new status and counts it (statuses are state, not events).
    """

    def __init__(self, bus: Bus, *, maxsize: int = 1000, topic: Topic = Topic.CAMERA_STATUS) -> None:
        self._bus = bus
        self._topic = topic  # CAMERA_STATUS, or PUBLISHER_STATUS for WHIP publishers
        self._queue: asyncio.Queue[CameraStatus | PublisherStatus] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-relay")

    def on_status(self, status: CameraStatus | PublisherStatus) -> None:
        try:
            self._queue.put_nowait(status)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            status = await self._queue.get()
            try:
                await self._bus.publish(self._topic, payload(status))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not publish a %s event", self._topic)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
