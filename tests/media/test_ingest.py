"""Ingest against a real GStreamer RTSP camera on loopback, and the demo file source and clip."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fusionhub.media.democlip import BUS_BOX, bus_image, make_scene_clip
from fusionhub.media.filesource import FileLoopSource
from fusionhub.media.ingest import CameraIngest, IngestOptions
from fusionhub.media.packets import EncodedPacket
from fusionhub.media.rtsploop import LoopCameraIngest
from fusionhub.media.sampling import SamplingOptions
from fusionhub.media.source import ThreadedSource
from fusionhub.signaling.messages import CameraStatus
from tests.support.rtsp import RtspServer, TinyRtspServer, free_port

from .conftest import CLIP_FPS

pytestmark = pytest.mark.slow

FAST = IngestOptions(timeout_s=2.0, reconnect_min_s=0.2, reconnect_max_s=1.0, sample_min_interval_s=0.0)


def nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B buffer, in order."""
    types, i = [], 0
    while (j := data.find(b"\x00\x00\x01", i)) >= 0 and j + 3 < len(data):
        types.append(data[j + 3] & 0x1F)
        i = j + 3
    return types


@dataclass
class Recorder:
    """Sink and callbacks of one source, recording what reaches the event loop."""

    packets: list[EncodedPacket] = field(default_factory=list)
    samples: list[tuple[int, float, np.ndarray]] = field(default_factory=list)
    statuses: list[CameraStatus] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    thumbs: list[np.ndarray | None] = field(default_factory=list)  # what on_sample got with each sample
    thumb_threads: set[str] = field(default_factory=set)  # where the thumbnailer ran

    def on_packet(self, packet: EncodedPacket) -> None:
        self._note_thread()
        self.packets.append(packet)

    def on_sample(self, camera_id: int, ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        self._note_thread()
        self.samples.append((camera_id, ts, frame))
        self.thumbs.append(thumb)

    def thumbnail(self, frame: np.ndarray) -> np.ndarray:
        """A thumbnailer such as analytics' motion gate gives the gateway: it notes its thread."""
        self.thumb_threads.add(threading.current_thread().name)
        return thumb_of(frame)

    def on_status(self, status: CameraStatus) -> None:
        self._note_thread()
        self.statuses.append(status)

    def _note_thread(self) -> None:
        self.threads.add(threading.current_thread().name)

    def states(self) -> list[tuple[str, str | None]]:
        return [(s.state, s.reason) for s in self.statuses]

    async def wait_for(self, what: Callable[[], bool], timeout: float = 10.0) -> float:
        """Wait until `what()` holds; return how long it took."""
        start = time.monotonic()
        async with asyncio.timeout(timeout):
            while not what():
                await asyncio.sleep(0.02)
        return time.monotonic() - start

    def last_state(self) -> str | None:
        return self.statuses[-1].state if self.statuses else None


Source = ThreadedSource | LoopCameraIngest


def thumb_of(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (16, 9), interpolation=cv2.INTER_AREA)


_decode_pool: ThreadPoolExecutor | None = None  # the event-loop engine's, as the gateway would share it


@pytest.fixture(scope="module", autouse=True)
def _decode_pool_ends_with_the_module() -> Iterator[None]:
    """The shared pool's threads end with this module's tests, not with the test session."""
    global _decode_pool
    yield
    if _decode_pool is not None:
        _decode_pool.shutdown(wait=True)
        _decode_pool = None


def camera(
    url: str, rec: Recorder, options: IngestOptions = FAST, camera_id: int = 1, engine: str = "threads"
) -> CameraIngest | LoopCameraIngest:
    loop = asyncio.get_running_loop()
    if engine == "event_loop":
        global _decode_pool
        if _decode_pool is None:
            _decode_pool = ThreadPoolExecutor(2, thread_name_prefix="test-decode")
        return LoopCameraIngest(
            camera_id, url, sink=rec, on_sample=rec.on_sample, on_status=rec.on_status, loop=loop, options=options,
            decode_pool=_decode_pool, thumbnailer=rec.thumbnail,
        )
    return CameraIngest(
        camera_id, url, sink=rec, on_sample=rec.on_sample, on_status=rec.on_status, loop=loop, options=options,
        thumbnailer=rec.thumbnail,
    )


@pytest.fixture
async def started() -> AsyncIterator[list[Source]]:
    """Sources a test starts; all stopped at the end, even when the test fails."""
    sources: list[Source] = []
    yield sources
    for source in sources:
        await source.stop()


def raw_parameter_sets(url: str, packets: int = 12) -> tuple[int, int]:
    """(packets with SPS or PPS, keyframes) in the first packets of a stream, as sent (no filter)."""
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 5)) as container:
        stream = container.streams.video[0]
        with_params = keys = 0
        for n, packet in enumerate(container.demux(stream)):
            if n >= packets:
                break
            keys += bool(packet.is_keyframe)
            with_params += bool({7, 8} & set(nal_types(bytes(packet))))
        return with_params, keys


# ---- RTSP camera ---------------------------------------------------------------------------


async def test_rtsp_camera_packets_samples_and_status(scene_clip: Path, started: list[Source], engine: str) -> None:
    async with RtspServer(scene_clip) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, engine=engine)
        started.append(ingest)
        t0 = time.monotonic()
        ingest.start()
        await rec.wait_for(lambda: bool(rec.packets))
        first_packet_s = time.monotonic() - t0
        await rec.wait_for(lambda: len(rec.samples) >= 3)
        await ingest.stop()

    first = rec.packets[0]
    assert first.is_keyframe and first.codec == "h264"
    assert 7 in nal_types(first.data) and 8 in nal_types(first.data)  # SPS and PPS in-band
    assert first.pts < 90_000  # rebased near 0
    pts = [p.pts for p in rec.packets]
    assert all(b > a for a, b in zip(pts, pts[1:])), "pts must rise strictly"
    # 10 fps on a 90 kHz clock: consecutive frames 9000 ticks apart
    assert np.median(np.diff(pts)) == 90_000 // CLIP_FPS
    # Every keyframe carries SPS/PPS, so a viewer can start at any of them.
    assert all(7 in nal_types(p.data) for p in rec.packets if p.is_keyframe)

    # Sampling interval 0: every keyframe is sampled, and only keyframes (1 s GOP at 10 fps).
    stats = ingest.stats
    assert stats.samples == len(rec.samples) == stats.keyframes
    assert stats.packets >= 5 * stats.keyframes
    for cam_id, ts, frame in rec.samples:
        assert cam_id == 1 and abs(ts - time.time()) < 60
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        assert max(frame.shape[:2]) <= 640

    assert rec.states()[:2] == [("connecting", None), ("online", None)]
    assert rec.statuses[-1].state == "stopped" and ingest.status.state == "stopped"
    assert rec.threads == {"MainThread"}, "callbacks must run on the event loop thread"
    # each sample comes with its thumbnail, made in the decode thread: the loop never spent time on it
    assert len(rec.thumbs) == len(rec.samples)
    for (_, _, frame), thumb in zip(rec.samples, rec.thumbs):
        assert thumb is not None and np.array_equal(thumb, thumb_of(frame))
    assert rec.thumb_threads and "MainThread" not in rec.thumb_threads

    jpeg = await asyncio.to_thread(ingest.latest_keyframe_jpeg)
    assert jpeg is not None
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (854, 640)  # the snapshot is full size
    print(f"time to first packet: {first_packet_s * 1000:.0f} ms")


async def test_sampling_interval_limits_samples(scene_clip: Path, started: list[Source], engine: str) -> None:
    async with RtspServer(scene_clip) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, FAST.model_copy(update={"sample_min_interval_s": 2.0}), engine=engine)
        started.append(ingest)
        ingest.start()
        await rec.wait_for(lambda: ingest.stats.keyframes >= 5)
        await asyncio.sleep(0.3)  # the event-loop engine decodes in a pool: let the 5th keyframe's turn come
        await ingest.stop()
    stats = ingest.stats
    # keyframes every 1 s, at most one sample per 2 s: every other keyframe
    assert stats.samples == (stats.keyframes + 1) // 2


async def test_rate_mode_samples_between_keyframes(scene_clip: Path, started: list[Source], engine: str) -> None:
    """fps mode over RTSP: every frame decoded in order, 5 samples a second of a 1 s GOP camera,
    and the samples are real pictures of the scene (the bus arrives 20 s in: all road here)."""
    options = FAST.model_copy(update={"sampling": SamplingOptions(mode="fps", fps=5)})
    async with RtspServer(scene_clip) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, options, engine=engine)
        started.append(ingest)
        ingest.start()
        await rec.wait_for(lambda: len(rec.packets) >= 40, timeout=15)  # 4 s of the camera's 10 fps
        await ingest.stop()
    stats = ingest.stats
    media_s = (rec.packets[-1].pts - rec.packets[0].pts) / 90_000
    assert stats.sample_errors == 0
    assert stats.decoded >= len(rec.packets) - 3  # every packet decoded (the last few may still wait)
    assert abs(stats.samples - 5 * media_s) <= 3, (stats.samples, media_s)
    assert len(rec.samples) >= stats.samples - 2
    frames = [f for _, _, f in rec.samples]
    assert all(f.shape == frames[0].shape and max(f.shape[:2]) <= 640 for f in frames)
    assert float(np.std(frames[-1])) > 10, "a picture, not a grey frame"


@pytest.mark.parametrize("mode", ["keyframes", "fps"])
async def test_a_camera_nobody_samples_is_not_decoded_yet_gives_snapshots_and_samples_again(
    scene_clip: Path, started: list[Source], engine: str, mode: str
) -> None:
    """A camera that analytics does not need (it has no zones) costs no decoding: viewers still get
    every packet, a snapshot decodes the latest keyframe when asked, and samples come back as soon
    as analytics needs the camera again."""
    options = FAST if mode == "keyframes" else FAST.model_copy(update={"sampling": SamplingOptions(mode="fps", fps=5)})
    async with RtspServer(scene_clip) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, options, engine=engine)
        started.append(ingest)
        ingest.set_sampling(False)
        ingest.start()
        await rec.wait_for(lambda: ingest.stats.keyframes >= 3)
        await asyncio.sleep(0.3)  # the event-loop engine's decode pool: let its turn come
        stats = ingest.stats
        assert (stats.decoded, stats.samples, len(rec.samples)) == (0, 0, 0)
        assert len(rec.packets) >= 2 * stats.keyframes  # viewers get every packet all the same
        jpeg = await asyncio.to_thread(ingest.latest_keyframe_jpeg)
        assert jpeg is not None
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[:2] == (854, 640) and float(np.std(img)) > 10  # the scene, full size
        assert await asyncio.to_thread(ingest.latest_keyframe_jpeg) is jpeg or ingest.stats.keyframes > stats.keyframes

        ingest.set_sampling(True)
        await rec.wait_for(lambda: len(rec.samples) >= 3, timeout=15)
        await ingest.stop()
    assert ingest.stats.sample_errors == 0  # rate mode started again at a keyframe
    assert float(np.std(rec.samples[-1][2])) > 10


@pytest.mark.parametrize("clip_name", ["scene_clip", "inband_clip"])
async def test_sdp_only_camera_really_sends_no_inband_parameter_sets(
    clip_name: str, request: pytest.FixtureRequest
) -> None:
    clip: Path = request.getfixturevalue(clip_name)
    async with RtspServer(clip) as normal, RtspServer(clip, params_in_sdp_only=True) as sdp_only:
        with_params, keys = await asyncio.to_thread(raw_parameter_sets, normal.url)
        assert keys >= 2 and with_params >= keys
        with_params, keys = await asyncio.to_thread(raw_parameter_sets, sdp_only.url)
        assert keys >= 2 and with_params == 0


async def test_sdp_only_camera_still_yields_self_contained_keyframes(
    scene_clip: Path, started: list[Source], engine: str
) -> None:
    async with RtspServer(scene_clip, params_in_sdp_only=True) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, engine=engine)
        started.append(ingest)
        ingest.start()
        await rec.wait_for(lambda: len(rec.samples) >= 2)
    keyframes = [p for p in rec.packets if p.is_keyframe]
    assert rec.packets[0].is_keyframe, "the first keyframe (which has no pts) must not be dropped"
    assert len(keyframes) >= 2
    for key in keyframes:
        types = nal_types(key.data)
        assert 7 in types and 8 in types and 5 in types
        assert types.index(7) < types.index(5) and types.index(8) < types.index(5)
    assert max(rec.samples[0][2].shape[:2]) <= 640


async def test_camera_death_goes_offline_and_recovers_by_itself(
    scene_clip: Path, started: list[Source], engine: str
) -> None:
    async with RtspServer(scene_clip) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, engine=engine)
        started.append(ingest)
        ingest.start()
        await rec.wait_for(lambda: rec.last_state() == "online")
        await rec.wait_for(lambda: len(rec.packets) >= 15)

        await server.stop()  # SIGKILL: the camera loses power
        took = await rec.wait_for(lambda: rec.last_state() == "offline", timeout=10)
        reason = rec.statuses[-1].reason
        assert reason in {"ended", "timeout", "unreachable"}
        before = len(rec.packets)

        await server.restart()
        await rec.wait_for(lambda: rec.last_state() == "online", timeout=10)
        await rec.wait_for(lambda: len(rec.packets) >= before + 15, timeout=10)
        assert ingest.stats.reconnects >= 1
    pts = [p.pts for p in rec.packets]
    assert all(b > a for a, b in zip(pts, pts[1:])), "pts stay monotonic across the reconnect"
    assert rec.packets[before].is_keyframe
    print(f"offline {took:.2f} s after the camera died (reason {reason})")


async def test_stalled_camera_times_out(scene_clip: Path, started: list[Source], engine: str) -> None:
    async with RtspServer(scene_clip) as server:
        rec = Recorder()
        ingest = camera(server.url, rec, FAST.model_copy(update={"timeout_s": 1.0}), engine=engine)
        started.append(ingest)
        ingest.start()
        await rec.wait_for(lambda: rec.last_state() == "online")
        server.pause()  # connection open, nothing sent
        try:
            await rec.wait_for(lambda: rec.last_state() == "offline", timeout=8)
        finally:
            server.resume()
        assert rec.statuses[-1].reason == "timeout"


async def test_unreachable_camera_is_offline_and_stops_promptly(started: list[Source], engine: str) -> None:
    rec = Recorder()
    ingest = camera(f"rtsp://127.0.0.1:{free_port()}/cam", rec, engine=engine)
    started.append(ingest)
    ingest.start()
    await rec.wait_for(lambda: rec.last_state() == "offline")
    assert rec.statuses[-1].reason == "unreachable"
    await asyncio.sleep(1.5)  # a few reconnect attempts
    t = time.monotonic()
    await ingest.stop()
    await ingest.stop()  # twice is fine
    assert time.monotonic() - t < 1.0
    assert ingest.status.state == "stopped"
    # a flapping camera: only one offline status, not one per failed attempt
    assert [s for s in rec.states() if s[0] == "offline"] == [("offline", "unreachable")]


@pytest.mark.parametrize("digest", [False, True], ids=["basic", "digest"])
async def test_password_camera_never_leaks_the_password(
    scene_clip: Path, started: list[Source], caplog: pytest.LogCaptureFixture, engine: str, digest: bool
) -> None:
    password, wrong = "Corr3ct-Horse-9", "Wr0ng-Battery-7"
    caplog.set_level(logging.DEBUG)
    async with RtspServer(scene_clip, user="operator", password=password, digest=digest) as server:
        good, bad = Recorder(), Recorder()
        ok = camera(server.url, good, engine=engine)
        refused = camera(server.url_for("operator", wrong), bad, camera_id=2, engine=engine)
        started.extend([ok, refused])
        ok.start()
        refused.start()
        await good.wait_for(lambda: good.last_state() == "online")
        await bad.wait_for(lambda: bad.last_state() == "offline")
        await asyncio.sleep(1.0)  # let a reconnect attempt or two fail and log
        await ok.stop()
        await refused.stop()
    assert bad.statuses[-2].reason == "auth_refused"  # the last one is "stopped"
    assert len(good.packets) > 0 and not bad.packets
    # the logs were captured and do speak about both cameras
    assert "[camera 1]" in caplog.text and "[camera 2]" in caplog.text and "auth_refused" in caplog.text
    everything = caplog.text + repr(ok) + repr(refused) + ok.public_url + refused.public_url
    everything += " ".join(f"{s.state} {s.reason}" for s in good.statuses + bad.statuses)
    for secret in (password, wrong):
        assert secret not in everything


async def test_a_camera_that_redirects_is_followed(scene_clip: Path, started: list[Source], engine: str) -> None:
    """An RTSP proxy or NVR answering DESCRIBE with 302 to another port of its host: the stream is
    read where it points, with the camera's password (the same host)."""
    async with RtspServer(scene_clip, user="operator", password="Redir3ct-Pass", digest=True) as server:
        real = server.url.replace("operator:Redir3ct-Pass@", "")  # a Location carries no password

        async with TinyRtspServer(lambda _port: f"RTSP/1.0 302 Moved Temporarily\r\nLocation: {real}") as proxy:
            rec = Recorder()
            ingest = camera(f"rtsp://operator:Redir3ct-Pass@127.0.0.1:{proxy.port}/cam", rec, engine=engine)
            started.append(ingest)
            ingest.start()
            await rec.wait_for(lambda: len(rec.samples) >= 1, 15)
            await ingest.stop()
    assert rec.states()[:2] == [("connecting", None), ("online", None)]
    assert any(r.startswith("DESCRIBE") for r in proxy.requests)


# ---- file source -------------------------------------------------------------------------


async def test_file_source_plays_in_real_time_and_loops(short_clip: Path, started: list[Source]) -> None:
    rec = Recorder()
    source = FileLoopSource(
        7,
        short_clip,
        sink=rec,
        on_sample=rec.on_sample,
        on_status=rec.on_status,
        loop=asyncio.get_running_loop(),
        options=FAST,
    )
    started.append(source)
    source.start()
    await rec.wait_for(lambda: bool(rec.packets))
    t0, n0 = time.monotonic(), len(rec.packets)
    await asyncio.sleep(4.0)  # the clip is 3 s long: it loops at least once
    elapsed, sent = time.monotonic() - t0, len(rec.packets) - n0
    await source.stop()

    rate = sent / elapsed
    assert 0.8 * CLIP_FPS <= rate <= 1.2 * CLIP_FPS, f"{rate:.1f} packets/s"
    pts = [p.pts for p in rec.packets]
    steps = set(np.diff(pts).tolist())
    assert steps == {90_000 // CLIP_FPS}, f"pts steps {steps}: seamless across loops"
    assert pts[-1] > 3 * 90_000  # past the end of the 3 s clip: it looped
    keys = [p for p in rec.packets if p.is_keyframe]
    assert rec.packets[0].is_keyframe and all(7 in nal_types(k.data) for k in keys)
    assert len(keys) >= 4 and len(rec.samples) == source.stats.samples >= 4
    assert rec.samples[0][0] == 7 and rec.samples[0][2].shape[1] == 320
    assert rec.states() == [("connecting", None), ("online", None), ("stopped", None)]
    assert await asyncio.to_thread(source.latest_keyframe_jpeg)


async def test_file_source_missing_file_is_offline(tmp_path: Path, started: list[Source]) -> None:
    rec = Recorder()
    source = FileLoopSource(
        2,
        tmp_path / "nope.mp4",
        sink=rec,
        on_sample=rec.on_sample,
        on_status=rec.on_status,
        loop=asyncio.get_running_loop(),
        options=FAST,
    )
    started.append(source)
    source.start()
    await rec.wait_for(lambda: rec.last_state() == "offline")
    assert rec.statuses[-1].reason == "unreachable"


# ---- demo clip -----------------------------------------------------------------------------


def test_scene_clip_duration_gop_and_vehicle_removed(tmp_path: Path) -> None:
    out = make_scene_clip(
        tmp_path / "demo.mp4", image=bus_image(), seconds_empty=2, seconds_present=2, fps=10, width=321, gop_s=0.5
    )
    assert out.stat().st_size < 1_000_000
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.profile in {"Constrained Baseline", "Baseline", "Main"}
        assert (stream.width, stream.height) == (322, 428)  # 321 wide, padded to even
        packets = [p for p in container.demux(stream) if p.size]
        assert len(packets) == 40
        last = packets[-1]
        assert last.pts is not None and last.duration is not None and stream.time_base is not None
        duration = float((last.pts + last.duration) * stream.time_base)
        assert duration == pytest.approx(4.0, abs=0.01)
        keys = [i for i, p in enumerate(packets) if p.is_keyframe]
        assert keys == list(range(0, 40, 5))  # every 0.5 s
        assert all(p.pts == p.dts for p in packets)  # no B-frames: decode order is display order
        container.seek(0)
        frames = [f.to_ndarray(format="bgr24").astype(np.int16) for f in container.decode(stream)]
    empty, present = frames[5], frames[35]
    k = 321 / 810
    x1, y1, x2, y2 = (round(v * k) for v in BUS_BOX)
    # the bus (blue) is there only in the second half; the building above it is in both
    assert np.abs(empty[y1:y2, x1:x2] - present[y1:y2, x1:x2]).mean() > 30
    assert np.abs(empty[: y1 - 10] - present[: y1 - 10]).mean() < 5


def test_ingest_options_are_bounded_and_strict() -> None:
    assert IngestOptions().sample_max_side == 640 and IngestOptions().sample_min_interval_s == 1.0
    with pytest.raises(ValueError):
        IngestOptions(sample_max_side=0)
    with pytest.raises(ValueError):
        IngestOptions(reconnect_min_s=5, reconnect_max_s=1)
    with pytest.raises(ValueError):
        IngestOptions(timeot_s=3)  # type: ignore[call-arg]  # typo: extra keys are refused


async def test_no_keyframe_for_too_long_is_degraded(tmp_path: Path, started: list[Source]) -> None:
    clip = make_scene_clip(
        tmp_path / "long-gop.mp4", image=bus_image(), seconds_empty=1, seconds_present=2, width=160, gop_s=2.0
    )
    rec = Recorder()
    source = FileLoopSource(
        3,
        clip,
        sink=rec,
        on_sample=rec.on_sample,
        on_status=rec.on_status,
        loop=asyncio.get_running_loop(),
        options=FAST.model_copy(update={"keyframe_timeout_s": 1.0}),
    )
    started.append(source)
    source.start()
    await rec.wait_for(lambda: ("online", None) in rec.states()[2:], timeout=8)
    assert rec.states()[:4] == [
        ("connecting", None),
        ("online", None),
        ("degraded", "no_keyframe"),  # 1 s into a 2 s GOP
        ("online", None),  # the next keyframe
    ]


async def test_a_keyframes_only_camera_passes_its_keyframes_and_still_notices_a_missing_one(
    tmp_path: Path, started: list[Source]
) -> None:
    """The event-loop engine reading a substream (keyframes_only): only keyframes reach the sink and
    the sampler, yet a keyframe later than keyframe_timeout_s is reported as for any camera."""
    clip = make_scene_clip(
        tmp_path / "long-gop.mp4", image=bus_image(), seconds_empty=2, seconds_present=4, width=160, gop_s=2.0
    )
    async with RtspServer(clip) as server:
        global _decode_pool
        if _decode_pool is None:
            _decode_pool = ThreadPoolExecutor(2, thread_name_prefix="test-decode")
        rec = Recorder()
        options = FAST.model_copy(update={"keyframe_timeout_s": 1.0})
        source = LoopCameraIngest(
            4, server.url, sink=rec, on_sample=rec.on_sample, on_status=rec.on_status,
            loop=asyncio.get_running_loop(), options=options, decode_pool=_decode_pool, keyframes_only=True,
        )
        started.append(source)
        source.start()
        await rec.wait_for(lambda: ("online", None) in rec.states()[2:] and len(rec.samples) >= 2, timeout=15)
        await source.stop()
    assert rec.packets and all(p.is_keyframe for p in rec.packets)
    assert source.stats.packets == source.stats.keyframes == len(rec.packets)
    assert len(rec.samples) >= 2 and all(frame.shape[1] == 160 for _, _, frame in rec.samples)
    assert rec.states()[:4] == [
        ("connecting", None),
        ("online", None),
        ("degraded", "no_keyframe"),  # noticed on the watch tick: no picture came in between
        ("online", None),  # the next keyframe
    ]


async def test_keyframes_only_is_ignored_in_rate_mode(scene_clip: Path, started: list[Source]) -> None:
    """A substream sampled at N fps needs every picture: keyframes_only does not drop them there."""
    async with RtspServer(scene_clip) as server:
        global _decode_pool
        if _decode_pool is None:
            _decode_pool = ThreadPoolExecutor(2, thread_name_prefix="test-decode")
        rec = Recorder()
        options = FAST.model_copy(update={"sampling": SamplingOptions(mode="fps", fps=2.0)})
        source = LoopCameraIngest(
            5, server.url, sink=rec, on_sample=rec.on_sample, on_status=rec.on_status,
            loop=asyncio.get_running_loop(), options=options, decode_pool=_decode_pool, keyframes_only=True,
        )
        started.append(source)
        source.start()
        await rec.wait_for(lambda: sum(p.is_keyframe for p in rec.packets) >= 2)
        await source.stop()
    assert sum(not p.is_keyframe for p in rec.packets) >= 5
