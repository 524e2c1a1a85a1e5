"""A real RTSP camera behind the gateway, watched by real aiortc viewers: it dies and comes back,
nobody watches it, analytics needs it. What a console would notice is asserted."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import av
import numpy as np
import pytest

from fusionhub.media.config import MediaConfig
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.options import IngestOptions
from fusionhub.signaling.messages import CameraStatus
from tests.support.avclip import make_av_clip
from tests.support.rtsp import RtspServer, free_port

from .viewers import DecodingViewer

pytestmark = pytest.mark.slow

CAM = 3
FAST_RECONNECT = IngestOptions(reconnect_min_s=0.2, reconnect_max_s=1.0, timeout_s=2.0)


class Statuses(list[CameraStatus]):
    """Every status the gateway published, with a wait helper."""

    def last(self) -> CameraStatus | None:
        return self[-1] if self else None

    async def wait(self, what: Callable[[CameraStatus], bool], timeout: float) -> float:
        start = time.monotonic()
        async with asyncio.timeout(timeout):
            while not (self and what(self[-1])):
                await asyncio.sleep(0.02)
        return time.monotonic() - start


async def _gateway(config: MediaConfig, statuses: Statuses) -> MediaGateway:
    gateway = MediaGateway(config, on_sample=lambda *_: None, on_status=statuses.append)
    await gateway.start()
    return gateway


@pytest.fixture
async def watched(scene_clip: Path, engine: str) -> AsyncIterator[tuple[RtspServer, MediaGateway, Statuses]]:
    statuses = Statuses()
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], ingest=FAST_RECONNECT, rtsp_engine=engine)
    async with RtspServer(scene_clip) as camera:
        gateway = await _gateway(config, statuses)
        try:
            await gateway.add_camera(CAM, camera.url)
            yield camera, gateway, statuses
        finally:
            await gateway.stop()


async def _watch(gateway: MediaGateway) -> tuple[DecodingViewer, str]:
    viewer = DecodingViewer()
    answer, sid = await gateway.whep_offer(CAM, await viewer.offer())
    await viewer.accept(answer)
    return viewer, sid


async def test_camera_dies_goes_offline_and_the_same_viewers_resume(
    watched: tuple[RtspServer, MediaGateway, Statuses],
) -> None:
    camera, gateway, statuses = watched
    viewers = [await _watch(gateway) for _ in range(2)]
    try:
        for viewer, _ in viewers:
            await viewer.wait_frames(10)
        await statuses.wait(lambda s: s.state == "online", 10)
        pcs = [gateway.session(sid).peer_connection for _, sid in viewers]

        await camera.stop()  # SIGKILL mid-stream: the camera loses power
        took = await statuses.wait(lambda s: s.state == "offline", 10)
        offline = statuses.last()
        assert offline is not None and offline.reason, "offline always says why"
        print(f"offline ({offline.reason}) {took:.2f} s after the camera died")
        assert gateway.status(CAM).state == "offline"

        frozen = [v.frames for v, _ in viewers]
        await camera.restart()
        back = await statuses.wait(lambda s: s.state == "online", 15)
        print(f"online again {back:.2f} s after the camera restarted")
        async with asyncio.timeout(10):  # the same sessions decode again: nobody reconnected
            while any(v.frames < f + 20 for (v, _), f in zip(viewers, frozen, strict=True)):
                await asyncio.sleep(0.05)
        assert sorted(gateway.session_ids(CAM)) == sorted(sid for _, sid in viewers)
        assert [gateway.session(sid).peer_connection for _, sid in viewers] == pcs
        assert all(pc.connectionState == "connected" for pc in pcs)
        t0 = time.monotonic()
        await asyncio.sleep(2)
        assert all(v.fps(t0, time.monotonic()) >= 8 for v, _ in viewers)  # the camera sends 10 fps
    finally:
        for viewer, _ in viewers:
            await viewer.close()


async def test_a_late_viewer_of_a_live_rtsp_camera_sees_a_picture_within_a_second(tmp_path: Path, engine: str) -> None:
    """A real camera with a 5 s GOP: viewers joining at different points of it start from the
    cached keyframe at once instead of waiting up to 5 s for the next one."""
    statuses = Statuses()
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], ingest=FAST_RECONNECT, rtsp_engine=engine)
    gateway = await _gateway(config, statuses)
    clip = make_av_clip(tmp_path / "gop5.mp4", seconds=30, gop_s=5)
    firsts = []
    try:
        async with RtspServer(clip) as camera:
            await gateway.add_camera(CAM, camera.url)
            await statuses.wait(lambda s: s.state == "online", 15)
            reader_threads = [t for t in threading.enumerate() if t.name == f"media-source-{CAM}"]
            assert len(reader_threads) == (engine == "threads"), "the event-loop engine has no thread per camera"
            await asyncio.sleep(0.3)
            keyframes_before = gateway.ingest_stats()[CAM].keyframes
            for delay in (0.1, 1.2, 1.2):  # about 0.4, 1.6 and 2.8 s into the stream's first GOP
                await asyncio.sleep(delay)
                viewer = DecodingViewer()
                try:
                    posted = time.monotonic()
                    answer, _ = await gateway.whep_offer(CAM, await viewer.offer())
                    await viewer.accept(answer)
                    await viewer.wait_frames(1, timeout=6)
                    firsts.append(viewer.frame_times[0] - posted)
                finally:
                    await viewer.close()
            keyframes_after = gateway.ingest_stats()[CAM].keyframes
    finally:
        await gateway.stop()
    print(f"late RTSP viewers (5 s GOP): first decoded frame after {[round(f, 3) for f in firsts]} s")
    assert keyframes_after == keyframes_before  # all joined within one GOP: no new keyframe helped them
    assert max(firsts) < 1.0


async def test_idle_camera_stops_being_pulled_and_resumes_on_demand(scene_clip: Path) -> None:
    statuses = Statuses()
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], idle_grace_s=1.0)
    async with RtspServer(scene_clip) as camera:
        gateway = await _gateway(config, statuses)
        try:
            await gateway.add_camera(CAM, camera.url)
            relay = gateway._cameras[CAM].relay
            await statuses.wait(lambda s: s.state == "online", 10)
            # nobody watches it and analytics does not need it: idle once the grace period is over
            took = await statuses.wait(lambda s: s.state == "idle", 5)
            assert 0.5 < took < 4
            assert gateway.status(CAM).state == "idle" and gateway.stats()["idle_cameras"] == [CAM]
            pulled = relay.packets_in
            await asyncio.sleep(1.0)
            assert relay.packets_in == pulled, "an idle camera is not pulled"

            # a viewer arrives: the camera is pulled again and the viewer gets pictures
            posted = time.monotonic()
            viewer, sid = await _watch(gateway)
            try:
                await viewer.wait_frames(5, timeout=10)
                print(f"idle camera: first frame {viewer.frame_times[0] - posted:.2f} s after the offer")
                assert gateway.status(CAM).state == "online"
                await asyncio.sleep(2.0)  # longer than the grace: a watched camera stays pulled
                assert gateway.stats()["idle_cameras"] == []
            finally:
                await gateway.whep_delete(sid)
                await viewer.close()
            await statuses.wait(lambda s: s.state == "idle", 5)

            # analytics needs it (a zone was drawn): pulled again, and kept past the grace period
            gateway.set_analytics_need(CAM, True)
            await statuses.wait(lambda s: s.state == "online", 10)
            await asyncio.sleep(2.0)
            assert gateway.status(CAM).state == "online"
            gateway.set_analytics_need(CAM, False)
            await statuses.wait(lambda s: s.state == "idle", 5)
            assert [s.state for s in statuses].count("stopped") == 0  # idling is not reported as stopped
        finally:
            await gateway.stop()


def _h265_clip(path: Path) -> Path:
    """A camera we cannot relay: H.265."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx265", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"x265-params": "log-level=error"}
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), i * 8 % 255, np.uint8), format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


async def test_offline_reasons_tell_what_is_wrong(scene_clip: Path, tmp_path: Path, engine: str) -> None:
    """Each way a camera can be unusable is reported with its own reason, pushed as a status."""
    statuses = Statuses()
    gateway = await _gateway(MediaConfig(ice_host_addresses=["127.0.0.1"], rtsp_engine=engine), statuses)
    try:
        async with (
            RtspServer(_h265_clip(tmp_path / "h265.mp4"), video="h265") as hevc,
            RtspServer(make_av_clip(tmp_path / "av.mp4", seconds=4), video="none", audio="pcma") as mic_only,
            RtspServer(scene_clip, user="cam", password="right-pass") as locked,
        ):
            cases = {
                11: (hevc.url, "unsupported_codec"),
                12: (mic_only.url, "no_video"),
                13: (locked.url_for("cam", "wrong-pass"), "auth_refused"),
                14: (f"rtsp://127.0.0.1:{free_port()}/cam", "unreachable"),
            }
            for camera_id, (url, _) in cases.items():
                await gateway.add_camera(camera_id, url)
            async with asyncio.timeout(15):
                while any(gateway.status(cid).state != "offline" for cid in cases):
                    await asyncio.sleep(0.05)
            for camera_id, (_, reason) in cases.items():
                assert gateway.status(camera_id).reason == reason
                pushed = [s for s in statuses if s.camera_id == camera_id and s.state == "offline"]
                assert pushed and pushed[0].reason == reason
    finally:
        await gateway.stop()


async def _picky_proxy(upstream_port: int, refused_agent: bytes) -> asyncio.Server:
    """A TCP proxy in front of a real camera that answers a SETUP from `refused_agent` with 461 and
    hangs up: a camera with a quirk only one RTSP client trips over."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)

        async def upstream_to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        pump = asyncio.create_task(upstream_to_client())
        try:
            while data := await reader.read(65536):
                if data.startswith(b"SETUP ") and refused_agent in data:
                    cseq = next(line for line in data.split(b"\r\n") if line.lower().startswith(b"cseq:"))
                    writer.write(b"RTSP/1.0 461 Unsupported Transport\r\n" + cseq + b"\r\n\r\n")
                    await writer.drain()
                    break
                up_writer.write(data)
                await up_writer.drain()
        except ConnectionError:
            pass
        finally:
            pump.cancel()
            up_writer.close()
            writer.close()

    return await asyncio.start_server(client, "127.0.0.1", 0)


async def test_a_camera_the_event_loop_engine_cannot_read_is_handed_to_ffmpeg(
    scene_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sessions that end twice in a row before any picture: the gateway reads the camera with the
    threaded engine instead, and the console sees it online, with a warning in the log."""
    statuses = Statuses()
    caplog.set_level(logging.INFO, logger="fusionhub.media")
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], ingest=FAST_RECONNECT, rtsp_engine="event_loop")
    gateway = await _gateway(config, statuses)
    try:
        async with RtspServer(scene_clip) as camera:
            proxy = await _picky_proxy(camera.port, b"User-Agent: FusionHub")
            try:
                port = proxy.sockets[0].getsockname()[1]
                await gateway.add_camera(CAM, f"rtsp://127.0.0.1:{port}/{camera.path}")
                await statuses.wait(lambda s: s.state == "online", 20)
                await asyncio.sleep(1.5)
                assert gateway.ingest_stats()[CAM].keyframes >= 1, "pictures arrive"
                assert any(t.name == f"media-source-{CAM}" for t in threading.enumerate()), "FFmpeg reads it"
                assert [s.reason for s in statuses if s.state == "offline"] == ["ended"]  # once, then handed over
                warnings = [r for r in caplog.records if "read by the threaded engine" in r.getMessage()]
                assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
                assert "461" in warnings[0].getMessage()
            finally:
                proxy.close()
    finally:
        await gateway.stop()


async def test_video_that_stops_while_the_audio_goes_on_is_not_online(tmp_path: Path) -> None:
    """A terminal whose encoder hangs but whose microphone still streams: the reads never time
    out, yet the console must learn the picture is gone, and a reconnect brings it back."""
    statuses = Statuses()
    options = IngestOptions(reconnect_min_s=0.2, reconnect_max_s=1.0, timeout_s=2.0, keyframe_timeout_s=2.0)
    gateway = await _gateway(MediaConfig(ice_host_addresses=["127.0.0.1"], ingest=options), statuses)
    clip = make_av_clip(tmp_path / "av.mp4", seconds=20)
    try:
        async with RtspServer(clip, audio="pcma", video_stops_after=2.0) as terminal:
            await gateway.add_camera(CAM, terminal.url)
            await statuses.wait(lambda s: s.state == "online", 15)
            took = await statuses.wait(lambda s: s.state == "offline", 10)
            assert statuses[-1].reason == "no_video", statuses[-1]
            assert took < 10
            # the server gives every new session the stream from the start: the picture is back
            await statuses.wait(lambda s: s.state == "online", 15)
    finally:
        await gateway.stop()


async def test_a_flapping_camera_warns_once_then_logs_at_debug(
    watched: tuple[RtspServer, MediaGateway, Statuses], caplog: pytest.LogCaptureFixture
) -> None:
    camera, gateway, statuses = watched
    caplog.set_level(logging.DEBUG, logger="fusionhub.media")
    for _ in range(3):  # online, dies, comes back: three times
        await statuses.wait(lambda s: s.state == "online", 15)
        await camera.stop()
        await statuses.wait(lambda s: s.state == "offline", 10)
        await camera.restart()
    await statuses.wait(lambda s: s.state == "online", 15)
    offline = [r for r in caplog.records if r.name.startswith("fusionhub.media") and " offline (" in r.getMessage()]
    assert len(offline) >= 3
    assert [r.levelno for r in offline] == [logging.WARNING] + [logging.DEBUG] * (len(offline) - 1)
    assert sum(1 for s in statuses if s.state == "offline") >= 3  # every outage still reaches consoles


async def test_a_camera_only_analytics_needs_is_read_in_batches_until_someone_watches(scene_clip: Path) -> None:
    """media.read_batch_ms on the event-loop engine: a camera analytics samples but nobody watches is
    read several pictures at a time; a viewer turns that off for as long as it watches (every
    picture read as it comes), and it comes back once the viewer has gone."""
    statuses = Statuses()
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], rtsp_engine="event_loop", read_batch_ms=500)
    async with RtspServer(scene_clip) as camera:
        gateway = await _gateway(config, statuses)

        async def reads_per_picture(seconds: float) -> float:
            before = gateway.ingest_stats()[CAM]
            await asyncio.sleep(seconds)
            after = gateway.ingest_stats()[CAM]
            return (after.reads - before.reads) / max(1, after.packets - before.packets)

        try:
            await gateway.add_camera(CAM, camera.url)
            gateway.set_analytics_need(CAM, True)
            await statuses.wait(lambda s: s.state == "online", 10)
            await asyncio.sleep(2.5)  # two ticks of the session's watch: the camera's bitrate is known
            batched = await reads_per_picture(2.0)
            viewer, sid = await _watch(gateway)
            try:
                await viewer.wait_frames(5, timeout=10)
                watched = await reads_per_picture(2.0)
                await viewer.wait_frames(viewer.frames + 10, timeout=5)  # the viewer keeps getting pictures
            finally:
                await gateway.whep_delete(sid)
                await viewer.close()
            await asyncio.sleep(2.5)
            again = await reads_per_picture(2.0)
            samples = gateway.ingest_stats()[CAM].samples
        finally:
            await gateway.stop()
    print(f"reads per picture: nobody watching {batched:.2f}, watched {watched:.2f}, after the viewer {again:.2f}")
    assert batched < 0.5 and again < 0.5
    assert watched >= 0.9
    assert samples >= 8  # analytics got its keyframes all along (1 s GOP, some 9 s)
    assert [s.state for s in statuses].count("online") == 1, "batching must not make the camera look offline"
