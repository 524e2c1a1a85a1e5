"""A camera with a substream, behind the gateway: two real RTSP servers on loopback (the main
stream 640 wide, the substream 320 wide, the same 40 s scene, each behind a login). Analytics gets the substream's
pictures and the main stream is not decoded; viewers, snapshots and clips keep the main stream;
when the substream drops, analytics gets the main stream's pictures until it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from fusionhub.media.config import MediaConfig
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.options import IngestOptions
from fusionhub.signaling.messages import CameraStatus
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.slow

CAM = 5
USER, PASSWORD = "viewer", "s3cret-pass"
FAST_RECONNECT = IngestOptions(reconnect_min_s=0.2, reconnect_max_s=1.0, timeout_s=2.0)


class Samples(list[tuple[float, int]]):
    """(arrival time, picture width) of every sample analytics was handed for the camera."""

    async def wait(self, what: Callable[[int], bool], count: int, timeout: float, since: float = 0.0) -> None:
        async with asyncio.timeout(timeout):
            while sum(1 for t, w in self if t >= since and what(w)) < count:
                await asyncio.sleep(0.05)

    def widths(self, since: float) -> set[int]:
        return {w for t, w in self if t >= since}


@dataclass
class Rig:
    main: RtspServer
    sub: RtspServer
    gateway: MediaGateway
    samples: Samples
    statuses: list[CameraStatus]

    async def told(self, substream_online: bool | None, timeout: float = 10) -> None:
        """Wait until the camera's latest published status says this of its substream."""
        async with asyncio.timeout(timeout):
            while not (self.statuses and self.statuses[-1].substream_online is substream_online):
                await asyncio.sleep(0.05)

    def main_decoded(self) -> int:
        return self.gateway.ingest_stats()[CAM].decoded


MAIN_W = 480  # the main stream's samples: the 640x853 scene scaled to a longer side of 640
SUB_W = 320  # the substream's: 320x427, not scaled


@pytest.fixture(scope="module")
def substream_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene_clip's scene at half its width, as a camera's substream shows it."""
    from fusionhub.media.democlip import bus_image, make_scene_clip

    out = tmp_path_factory.mktemp("clips") / "substream.mp4"
    return make_scene_clip(out, image=bus_image(), seconds_empty=20, seconds_present=20, fps=10, width=320, gop_s=1.0)


@pytest.fixture
async def rig(scene_clip: Path, substream_clip: Path, engine: str) -> AsyncIterator[Rig]:
    samples = Samples()
    statuses: list[CameraStatus] = []

    def on_sample(camera_id: int, _ts: float, frame: np.ndarray, *_: object) -> None:
        assert camera_id == CAM  # the substream's samples are the camera's
        samples.append((time.monotonic(), frame.shape[1]))

    config = MediaConfig(ingest=FAST_RECONNECT, rtsp_engine=engine)
    async with (
        RtspServer(scene_clip, path="main", user=USER, password=PASSWORD) as main,
        RtspServer(substream_clip, path="sub", user=USER, password=PASSWORD) as sub,
    ):
        gateway = MediaGateway(config, on_sample=on_sample, on_status=statuses.append)
        await gateway.start()
        try:
            await gateway.add_camera(CAM, main.url, substream_url=sub.url)
            yield Rig(main, sub, gateway, samples, statuses)
        finally:
            await gateway.stop()


async def test_analytics_decodes_the_substream_and_the_main_stream_only_when_it_is_down(rig: Rig) -> None:
    await rig.samples.wait(lambda w: w == SUB_W, 3, timeout=20)  # the substream's pictures
    assert rig.gateway.stats()["substreams"][CAM] == {"running": True, "online": True}
    await rig.told(True)  # consoles are told which stream analytics decodes
    assert rig.statuses[-1].state == "online"  # the main stream's state, as before
    settled = time.monotonic()
    decoded = rig.main_decoded()
    await rig.samples.wait(lambda w: w == SUB_W, 3, timeout=10, since=settled)
    assert rig.samples.widths(settled) == {SUB_W}  # nothing from the main stream meanwhile
    assert rig.main_decoded() == decoded  # and nothing of it decoded
    assert rig.gateway.ingest_stats()[CAM].keyframes > 0  # though it is pulled, for viewers and clips

    jpeg = await rig.gateway.snapshot_jpeg(CAM)  # the snapshot is the main stream's, full size
    assert jpeg is not None
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] == 640

    await rig.sub.stop()  # the substream dies: analytics carries on with the main stream
    dropped = time.monotonic()
    await rig.samples.wait(lambda w: w == MAIN_W, 2, timeout=20, since=dropped)
    assert rig.gateway.stats()["substreams"][CAM] == {"running": True, "online": False}
    await rig.told(False)

    await rig.sub.restart()  # back: the main stream is no longer decoded
    await rig.samples.wait(lambda w: w == SUB_W, 1, timeout=30, since=time.monotonic())
    await rig.told(True)
    back = time.monotonic()
    decoded = rig.main_decoded()
    await rig.samples.wait(lambda w: w == SUB_W, 3, timeout=10, since=back)
    assert rig.samples.widths(back) == {SUB_W}
    assert rig.main_decoded() == decoded


async def test_the_substream_runs_only_while_analytics_needs_the_camera_and_can_be_changed(rig: Rig) -> None:
    await rig.samples.wait(lambda w: w == SUB_W, 1, timeout=20)
    decoded = rig.main_decoded()  # before the substream was online, the main stream was sampled

    rig.gateway.set_analytics_need(CAM, False)  # its zones were deleted
    assert rig.gateway.stats()["substreams"][CAM] == {"running": False, "online": False}
    await rig.told(None)  # not pulled: no substream to speak of
    await asyncio.sleep(0.5)  # a sample already in a decode thread may still land
    quiet = time.monotonic()
    await asyncio.sleep(3.0)  # three GOPs of the main stream
    assert rig.samples.widths(quiet) == set()
    assert rig.main_decoded() == decoded  # neither stream is decoded

    rig.gateway.set_analytics_need(CAM, True)  # a zone was drawn again
    await rig.samples.wait(lambda w: w == SUB_W, 2, timeout=20, since=time.monotonic())

    # the substream removed (PATCH substream_url null): the main stream is sampled, not replaced
    # (a new source would count its packets from 0)
    async with asyncio.timeout(15):
        while (packets := rig.gateway.ingest_stats()[CAM].packets) < 80:  # 8 s of the main stream
            await asyncio.sleep(0.1)
    await rig.gateway.add_camera(CAM, rig.main.url)
    assert CAM not in rig.gateway.stats()["substreams"]
    await rig.samples.wait(lambda w: w == MAIN_W, 2, timeout=20, since=time.monotonic())
    assert rig.gateway.ingest_stats()[CAM].packets > packets  # the same main source: viewers never noticed

    # and given again
    await rig.gateway.add_camera(CAM, rig.main.url, substream_url=rig.sub.url)
    await rig.samples.wait(lambda w: w == SUB_W, 2, timeout=20, since=time.monotonic())
    assert rig.gateway.ingest_stats()[CAM].packets > packets + 20
