"""Cameras with sound: G.711 reaches WebRTC viewers as sent, AAC as Opus from ONE encoder."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fusionhub.media.config import MediaConfig
from fusionhub.media.gateway import MediaGateway
from fusionhub.signaling.messages import CameraStatus
from tests.support.avclip import TONE_LEVEL, make_av_clip
from tests.support.rtsp import RtspServer

from .av_helpers import AvViewer

pytestmark = pytest.mark.slow

CAMERA = 1
TONE_RMS = TONE_LEVEL / 2**0.5


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_av_clip(tmp_path_factory.mktemp("av") / "tone.mp4", seconds=12)


@pytest.fixture
def statuses() -> list[CameraStatus]:
    """What the console would be told about the camera, in order."""
    return []


@pytest.fixture
async def gateway(loopback_ice: None, engine: str, statuses: list[CameraStatus]) -> AsyncIterator[MediaGateway]:
    """Both RTSP engines: the event-loop one hands a camera that offers audio to the threaded one."""
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], rtsp_engine=engine)
    gw = MediaGateway(config, on_sample=lambda *_: None, on_status=statuses.append)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def _camera_with_audio(gw: MediaGateway, cam: RtspServer, codec: str, statuses: list[CameraStatus]) -> None:
    await gw.add_camera(CAMERA, cam.url)
    async with asyncio.timeout(10):
        while gw.stats()["outputs"][CAMERA]["audio"]["codec"] != codec or not statuses:
            await asyncio.sleep(0.05)
        while statuses[-1].state != "online":
            await asyncio.sleep(0.05)
    assert any(t.name == f"media-source-{CAMERA}" for t in threading.enumerate()), "read by the threaded engine"
    # the hand-over from the event-loop engine is not news to the console: connecting once, then online
    assert [s.state for s in statuses] == ["connecting", "online"]


async def _viewer(gw: MediaGateway) -> tuple[AvViewer, str]:
    viewer = AvViewer()
    answer, sid = await gw.whep_offer(CAMERA, await viewer.offer())
    await viewer.accept(answer)
    return viewer, sid


@pytest.mark.parametrize("codec", ["pcma", "pcmu"])
async def test_g711_camera_audio_reaches_a_viewer_without_transcoding(
    gateway: MediaGateway, tone_clip: Path, codec: str, statuses: list[CameraStatus]
) -> None:
    async with RtspServer(tone_clip, audio=codec) as cam:
        await _camera_with_audio(gateway, cam, codec, statuses)
        viewer, sid = await _viewer(gateway)
        try:
            assert gateway.session(sid).audio_codec == codec.upper()
            await viewer.wait(video=10, audio=75)  # 1.5 s of 20 ms packets
            assert viewer.audio_rms > TONE_RMS / 2, viewer.audio_rms  # the tone, not silence
            outputs = gateway.stats()["outputs"][CAMERA]
            assert outputs["opus"] is None  # nothing was ever transcoded
            assert gateway.session(sid).stats()["audio_codec"] == codec.upper()
        finally:
            await viewer.close()


async def test_aac_camera_audio_is_opus_from_one_encoder_for_every_viewer(
    gateway: MediaGateway, tone_clip: Path, statuses: list[CameraStatus]
) -> None:
    async with RtspServer(tone_clip, audio="aac") as cam:
        await _camera_with_audio(gateway, cam, "aac", statuses)
        viewers = [await _viewer(gateway) for _ in range(3)]
        try:
            for _, sid in viewers:
                assert gateway.session(sid).audio_codec == "opus (transcoded)"
            await asyncio.gather(*(v.wait(video=10, audio=50) for v, _ in viewers))
            for viewer, _ in viewers:
                assert viewer.audio_rms > TONE_RMS / 4, viewer.audio_rms
            opus = gateway.stats()["outputs"][CAMERA]["opus"]
            assert opus["starts"] == 1 and opus["running"], opus  # one encoder, shared
            assert opus["listeners"] == 3
        finally:
            for viewer, _ in viewers:
                await viewer.close()


async def test_video_only_offer_gets_no_audio(
    gateway: MediaGateway, tone_clip: Path, statuses: list[CameraStatus]
) -> None:
    async with RtspServer(tone_clip, audio="pcma") as cam:
        await _camera_with_audio(gateway, cam, "pcma", statuses)
        viewer = AvViewer()
        answer, sid = await gateway.whep_offer(CAMERA, await viewer.offer(audio=False))
        await viewer.accept(answer)
        try:
            assert gateway.session(sid).audio_codec is None
            assert "m=audio" not in answer
            await viewer.wait(video=5)
        finally:
            await viewer.close()
