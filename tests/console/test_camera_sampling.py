"""A camera's analytics settings through the API: sampling mode and rate, detector size, motion
gate; checked, stored, shown, and applied to a real RTSP camera's ingest and analysis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fusionhub.console.keys import ANALYTICS, MEDIA
from fusionhub.media.democlip import bus_image, make_scene_clip
from tests.console.hubrunner import RunningHub, hub_config, running_hub
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.slow

LANE = [[0, 0.6], [1, 0.6], [1, 0.8], [0, 0.8]]


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        await running.login("admin")
        await running.login("duty")
        yield running


@pytest.fixture
def street_clip(tmp_path: Path) -> Path:
    """The real street photo as a 25 fps camera with a keyframe every 2 s."""
    return make_scene_clip(
        tmp_path / "street.mp4", image=bus_image(), seconds_empty=2, seconds_present=8, fps=25, width=320, gop_s=2.0
    )


async def _rates(hub: RunningHub, camera_id: int, seconds: float) -> tuple[float, float]:
    """Samples and decoded frames per second of a camera's ingest, over `seconds`."""
    media = hub.app[MEDIA]

    def now() -> tuple[int, int]:
        stats = media.ingest_stats().get(camera_id)
        return (stats.samples, stats.decoded) if stats else (0, 0)

    before, t0 = now(), time.monotonic()
    await asyncio.sleep(seconds)
    after, elapsed = now(), time.monotonic() - t0
    return (after[0] - before[0]) / elapsed, (after[1] - before[1]) / elapsed


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_sampling_settings_reach_the_camera_ingest(hub: RunningHub, street_clip: Path) -> None:
    async with RtspServer(street_clip) as server:
        body = {
            "name": "Gate 7", "url": server.url, "region": "city",
            "sampling": {"mode": "fps", "fps": 4}, "analysis": {"imgsz": 320, "motion_gate": False},
        }
        status, cam = await hub.call("POST", "/api/v1/cameras", "admin", json=body)
        assert status == 201, cam
        cid = cam["id"]
        assert cam["sampling"] == {"mode": "fps", "fps": 4.0}
        assert cam["analysis"] == {"imgsz": 320, "motion_gate": False}
        status, _zone = await hub.call(
            "POST", f"/api/v1/cameras/{cid}/zones", "admin", json={"name": "lane", "polygon": LANE, "dwell_s": 600}
        )
        assert status == 201
        await _until(lambda: hub.app[MEDIA].ingest_stats().get(cid) and hub.app[MEDIA].ingest_stats()[cid].samples > 2, 20,
                     "the first samples")
        samples, decoded = await _rates(hub, cid, 3.0)
        assert 3.0 <= samples <= 5.0 and decoded >= 18, (samples, decoded)  # 4 a second, every frame decoded
        analytics = hub.app[ANALYTICS]
        await _until(lambda: analytics.stats.by_camera[cid] >= 4, 10, "analysis")
        assert analytics.stats.frames_gated == 0  # the camera's gate is off

        # the defaults again: keyframes only, one every 2 s with this GOP
        status, cam = await hub.call("PATCH", f"/api/v1/cameras/{cid}", "admin", json={"sampling": None})
        assert status == 200 and cam["sampling"] == {"mode": "keyframes", "fps": 1.0}, cam
        await asyncio.sleep(2.5)
        samples, decoded = await _rates(hub, cid, 4.1)
        assert samples <= 1.0 and decoded <= 1.0, (samples, decoded)

        status, shown = await hub.call("GET", f"/api/v1/cameras/{cid}", "duty")
        assert status == 200 and shown["analysis"] == {"imgsz": 320, "motion_gate": False}


@pytest.mark.parametrize(
    "patch",
    [
        {"sampling": {"mode": "sometimes"}},
        {"sampling": {"mode": "fps", "fps": 0}},
        {"sampling": {"mode": "fps", "fps": 60}},
        {"sampling": {"fps": 2, "extra": 1}},
        {"analysis": {"imgsz": 300}},
        {"analysis": {"imgsz": 2048}},
        {"analysis": {"motion_gate": "yes"}},
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(hub: RunningHub, patch: dict[str, Any]) -> None:
    status, cam = await hub.call(
        "POST", "/api/v1/cameras", "admin",
        json={"name": "Gate 8", "url": "rtsp://127.0.0.1:9/s", "region": "city", "sampling": {"mode": "fps", "fps": 2}},
    )
    assert status == 201
    status, err = await hub.call("PATCH", f"/api/v1/cameras/{cam['id']}", "admin", json=patch)
    assert status == 422 and err["error"]["code"], err
    status, same = await hub.call("GET", f"/api/v1/cameras/{cam['id']}", "admin")
    assert same["sampling"] == {"mode": "fps", "fps": 2.0} and same["analysis"] == {"imgsz": None, "motion_gate": True}
    status, err = await hub.call("PATCH", f"/api/v1/cameras/{cam['id']}", "duty", json={"sampling": None})
    assert status == 403


PASSWORD = "gate9-Secret"


@pytest.fixture
def two_streams(tmp_path: Path) -> tuple[Path, Path]:
    """The street as a camera's main stream (640 wide) and its substream (320 wide), 30 s, 10 fps."""
    return tuple(  # type: ignore[return-value]
        make_scene_clip(
            tmp_path / f"street-{width}.mp4", image=bus_image(), seconds_empty=5, seconds_present=25, fps=10,
            width=width, gop_s=1.0,
        )
        for width in (640, 320)
    )


async def test_a_substream_is_what_analytics_decodes(
    hub: RunningHub, two_streams: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """An admin gives a camera its substream URL (without the login: the main URL's is used for the
    same host); analytics decodes it, the main stream is relayed undecoded; neither login shows."""
    caplog.set_level(logging.DEBUG)
    main_clip, sub_clip = two_streams
    media, analytics = hub.app[MEDIA], hub.app[ANALYTICS]
    async with RtspServer(main_clip, user="op", password=PASSWORD, substream=sub_clip) as server:
        body = {"name": "Gate 9", "url": server.url, "region": "city", "substream_url": server.sub_url_for()}
        status, cam = await hub.call("POST", "/api/v1/cameras", "admin", json=body)
        assert status == 201, cam
        cid = cam["id"]
        assert cam["url"] == server.url_for() and cam["has_credentials"] is True
        assert cam["substream_url"] == server.sub_url_for() and cam["substream_has_credentials"] is False
        status, _zone = await hub.call(
            "POST", f"/api/v1/cameras/{cid}/zones", "admin", json={"name": "lane", "polygon": LANE, "dwell_s": 600}
        )
        assert status == 201
        await _until(lambda: media.stats()["substreams"].get(cid, {}).get("online"), 20, "the substream online")
        await _until(lambda: cid in media.substream_stats() and media.substream_stats()[cid].samples >= 2, 20,
                     "samples of the substream")
        decoded = media.ingest_stats()[cid].decoded
        analysed = analytics.stats.by_camera[cid]
        await _until(lambda: analytics.stats.by_camera[cid] >= analysed + 2, 20, "analysis of the substream")
        assert media.ingest_stats()[cid].decoded == decoded  # the main stream: relayed, not decoded
        jpeg = await media.snapshot_jpeg(cid)
        assert jpeg is not None  # snapshots come from the main stream

        # bad substreams are refused and change nothing
        for bad, words in ((server.url, "main url"), ("http://127.0.0.1/sub", "substream url")):
            status, err = await hub.call("PATCH", f"/api/v1/cameras/{cid}", "admin", json={"substream_url": bad})
            assert status == 422 and words in err["error"]["message"], err
        status, same = await hub.call("GET", f"/api/v1/cameras/{cid}", "admin")
        assert same["substream_url"] == server.sub_url_for()

        # none again: analytics decodes the main stream
        status, cam = await hub.call("PATCH", f"/api/v1/cameras/{cid}", "admin", json={"substream_url": None})
        assert status == 200 and cam["substream_url"] is None, cam
        assert cid not in media.stats()["substreams"]
        await _until(lambda: media.ingest_stats()[cid].decoded > decoded, 20, "the main stream decoded")
        for path in ("/api/v1/cameras", f"/api/v1/cameras/{cid}"):
            status, shown = await hub.call("GET", path, "admin")
            assert status == 200 and PASSWORD not in str(shown)
    assert PASSWORD not in caplog.text
