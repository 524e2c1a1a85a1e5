"""Flag clips: MP4s remuxed from the packet ring (video as received, audio too), and disk budgets."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import pytest

from fusionhub.media.clips import ClipRecorder, ClipResult
from fusionhub.media.config import MediaConfig
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.recording import RecordingConfig
from fusionhub.signaling.messages import ClipMissing, ClipReady
from tests.support.avclip import make_av_clip
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.slow

CAMERA = 3
BEFORE, AFTER = 1.5, 1.5


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_av_clip(tmp_path_factory.mktemp("av") / "tone.mp4", seconds=12)


def recording(**kw: object) -> RecordingConfig:
    return RecordingConfig.model_validate({"buffer_s": 6, "clip_before_s": BEFORE, "clip_after_s": AFTER, **kw})


class Recorder:
    """A gateway plus a ClipRecorder collecting results, as the hub wires them."""

    def __init__(self, data_dir: Path, rec: RecordingConfig) -> None:
        self.data_dir = data_dir
        self.gateway = MediaGateway(
            MediaConfig(recording=rec), on_sample=lambda *_: None, on_status=lambda _: None
        )
        self.results: list[ClipResult] = []
        self.clips = ClipRecorder(rec, data_dir, ring_of=self.gateway.ring, on_result=self._collect)

    async def _collect(self, result: ClipResult) -> None:
        self.results.append(result)

    async def result_for(self, flag_id: str, timeout: float = 15.0) -> ClipResult:
        async with asyncio.timeout(timeout):
            while True:
                for r in self.results:
                    if r.flag_id == flag_id:
                        return r
                await asyncio.sleep(0.05)

    async def wait_ring(self, seconds: float, source: int = CAMERA) -> None:
        async with asyncio.timeout(15):
            while (ring := self.gateway.ring(source)) is None or ring.span_s < seconds:
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def recorder(data_dir: Path, rec: RecordingConfig) -> AsyncIterator[Recorder]:
    r = Recorder(data_dir, rec)
    await r.gateway.start()
    r.clips.start()
    try:
        yield r
    finally:
        await r.clips.stop()
        await r.gateway.stop()


def probe(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        out: dict[str, object] = {
            "video": video.codec_context.name,
            "size": (video.width, video.height),
            "video_s": float(video.duration * video.time_base) if video.duration else 0.0,
            "audio": container.streams.audio[0].codec_context.name if container.streams.audio else None,
        }
        frames = sum(1 for _ in container.decode(video=0))  # every picture decodes
        out["frames"] = frames
    return out


@pytest.mark.parametrize(("audio", "clip_audio"), [("aac", "aac"), ("pcma", "aac")])
async def test_a_flag_produces_a_playable_clip_covering_before_and_after(
    tmp_path: Path, tone_clip: Path, audio: str, clip_audio: str
) -> None:
    async with recorder(tmp_path, recording()) as r, RtspServer(tone_clip, audio=audio) as cam:
        await r.gateway.add_camera(CAMERA, cam.url)
        await r.wait_ring(BEFORE + 1)
        raised = time.time()
        assert r.clips.request("flag-1", CAMERA, raised)
        assert not r.clips.request("flag-1", CAMERA, raised)  # a redelivered flag records once
        result = await r.result_for("flag-1")
    assert isinstance(result, ClipReady), result
    assert result.path.startswith("clips/") and result.path.endswith(".mp4")
    assert result.start <= raised - BEFORE + 0.05 and result.end >= raised + AFTER - 0.3, (result, raised)
    assert result.has_audio
    info = probe(tmp_path / result.path)
    assert info["video"] == "h264" and info["size"] == (320, 240)
    assert info["audio"] == clip_audio
    assert info["video_s"] >= BEFORE + AFTER - 0.3, info  # covers before and after the flag
    assert info["frames"] >= (BEFORE + AFTER - 0.3) * 10, info  # 10 fps, all decodable
    assert not list((tmp_path / "clips").glob(".*part"))  # no partial file left behind


async def test_disk_budget_deletes_the_oldest_clips_and_keeps_recording(tmp_path: Path, short_clip: Path) -> None:
    rec = recording(clips_budget_bytes=10**6)
    async with recorder(tmp_path, rec) as r:
        await r.gateway.add_file_camera(CAMERA, short_clip)
        await r.wait_ring(BEFORE + 1)
        sizes = []
        for i in range(3):
            r.clips.request(f"flag-{i}", CAMERA, time.time())
            result = await r.result_for(f"flag-{i}")
            assert isinstance(result, ClipReady), result
            sizes.append(result.size)
        first = next(x for x in r.results if x.flag_id == "flag-0")
        assert isinstance(first, ClipReady)
        # a budget that holds about two clips: the next one pushes the oldest out
        r.clips._config = rec.model_copy(update={"clips_budget_bytes": sizes[1] + sizes[2] + max(sizes) + 70_000})
        r.clips.request("flag-3", CAMERA, time.time())
        assert isinstance(await r.result_for("flag-3"), ClipReady)
        removed = [x for x in r.results if isinstance(x, ClipMissing) and x.reason == "retention"]
        assert [x.path for x in removed] == [first.path]  # the oldest, and only it
        assert not (tmp_path / first.path).exists()
        left = sorted(p.name for p in (tmp_path / "clips").iterdir())
        assert len(left) == 3


async def test_budget_zero_records_nothing_and_says_why(tmp_path: Path, short_clip: Path) -> None:
    async with recorder(tmp_path, recording(clips_budget_bytes=0)) as r:
        await r.gateway.add_file_camera(CAMERA, short_clip)
        r.clips.request("flag-z", CAMERA, time.time())
        result = await r.result_for("flag-z")
    assert isinstance(result, ClipMissing) and result.reason == "no_budget"
    assert not (tmp_path / "clips").exists() or not any((tmp_path / "clips").iterdir())


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """<tmp>/data whose clips/ directory is a real 64 KiB tmpfs (needs root: skipped otherwise)."""
    data = tmp_path / "data"
    clips = data / "clips"
    clips.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(clips)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(clips)], check=False)


async def test_a_full_disk_reports_the_clip_missing_and_the_recorder_carries_on(
    tiny_disk: Path, short_clip: Path
) -> None:
    async with recorder(tiny_disk, recording()) as r:
        await r.gateway.add_file_camera(CAMERA, short_clip)
        await r.wait_ring(BEFORE + 1)
        r.clips.request("flag-full", CAMERA, time.time())
        result = await r.result_for("flag-full")
        assert isinstance(result, ClipMissing) and result.reason == "disk_full", result
        assert not any((tiny_disk / "clips").iterdir())  # the partial file is gone
        r.clips.request("flag-next", CAMERA, time.time())  # still running, still reporting
        assert isinstance(await r.result_for("flag-next"), ClipMissing)


async def test_a_camera_analytics_does_not_need_is_not_decoded_even_when_its_source_is_replaced(
    short_clip: Path, scene_clip: Path
) -> None:
    """The console tells the gateway which cameras analytics needs (those with zones). The others
    are relayed without a decode, also after their source is replaced; their snapshot still works."""
    samples: list[int] = []
    gateway = MediaGateway(MediaConfig(), on_sample=lambda cam, *_: samples.append(cam), on_status=lambda _: None)
    await gateway.start()
    try:
        await gateway.add_file_camera(CAMERA, short_clip)
        gateway.set_analytics_need(CAMERA, False)
        await gateway.add_file_camera(CAMERA, scene_clip)  # a new source: the camera's URL changed

        def decoded() -> int:
            return gateway.ingest_stats()[CAMERA].decoded

        async with asyncio.timeout(10):
            while gateway.ingest_stats()[CAMERA].keyframes < 3:
                await asyncio.sleep(0.05)
        assert decoded() == 0 and CAMERA not in samples
        jpeg = await gateway.snapshot_jpeg(CAMERA)
        assert jpeg is not None and jpeg[:3] == b"\xff\xd8\xff"

        gateway.set_analytics_need(CAMERA, True)  # a zone was drawn
        async with asyncio.timeout(10):
            while CAMERA not in samples:
                await asyncio.sleep(0.05)
        assert decoded() > 0
    finally:
        await gateway.stop()


async def test_snapshot_is_the_latest_keyframe_encoded_once(short_clip: Path) -> None:
    """GET .../snapshot.jpg is cheap: the JPEG of the latest sampled keyframe, encoded once and cached."""
    config = MediaConfig.model_validate({"ingest": {"sample_min_interval_s": 3600}})  # one sample, then none
    gateway = MediaGateway(config, on_sample=lambda *_: None, on_status=lambda _: None)
    await gateway.start()
    try:
        await gateway.add_file_camera(CAMERA, short_clip)
        async with asyncio.timeout(10):
            while (first := await gateway.snapshot_jpeg(CAMERA)) is None:
                await asyncio.sleep(0.05)
        assert first[:3] == b"\xff\xd8\xff"
        again = await gateway.snapshot_jpeg(CAMERA)
        assert again is first  # the cached bytes, not a second encode
    finally:
        await gateway.stop()
