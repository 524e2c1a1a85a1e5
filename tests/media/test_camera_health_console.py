"""Camera health end to end: a real RTSP camera dies and comes back while a commander's console
(real Chromium, the hub's own pages) watches it. Statuses travel media → StatusRelay → bus →
WsBridge → /ws → the wall's tile; the tile's WHEP session survives the outage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from fusionhub.console.keys import MEDIA
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, running_hub
from tests.support.browser import chromium
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.slow


async def _poll(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def _add_camera(hub: RunningHub, camera: RtspServer, name: str) -> int:
    await hub.login("admin")
    status, cam = await hub.call("POST", "/api/v1/cameras", "admin", json={"name": name, "url": camera.url, "region": "city"})
    assert status == 201, cam
    return int(cam["id"])


async def _console(page: Page, hub: RunningHub, username: str) -> None:
    await page.goto(f"{hub.url}/")
    await page.fill("[data-testid=login-username]", username)
    await page.fill("[data-testid=login-password]", PASSWORDS[username])
    await page.click("[data-testid=login-submit]")
    await page.click("[data-testid=tab-wall]")


@pytest.mark.timeout(180)
async def test_console_tile_shows_outage_with_reason_and_resumes_the_same_session(
    scene_clip: Path, tmp_path: Path, model_data_dir: Path
) -> None:
    async with RtspServer(scene_clip) as camera, running_hub(hub_config(tmp_path, model_data_dir)) as hub:
        cam_id = await _add_camera(hub, camera, "Gate 3")
        async with chromium() as browser:
            page = await browser.new_page()
            await _console(page, hub, "commander")
            tile = page.locator(f"[data-testid=video-tile][data-camera-id='{cam_id}']")
            badge = tile.locator("[data-testid=camera-status]")
            await tile.wait_for(timeout=20_000)

            async def frames() -> int:
                stats = await page.evaluate(f"window.fh.videoStats({cam_id})")
                return int(stats.get("framesDecoded", 0)) if stats else 0

            await _poll(lambda: _at_least(frames, 10), 30, "the tile to play the camera")
            await _poll(lambda: _state(tile, "online"), 10, "the tile to say online")
            sessions = hub.app[MEDIA].session_ids(cam_id)
            assert len(sessions) == 1

            await camera.stop()  # SIGKILL: the camera loses power
            died = time.monotonic()
            await _poll(lambda: _state(tile, "offline"), 10, "the tile to say offline")
            took = time.monotonic() - died
            text = await badge.inner_text()
            print(f"console tile: offline after {took:.2f} s, badge {text!r}")
            assert took < 10
            assert "·" in text and text.split("·", 1)[1].strip(), "offline is shown with its reason"

            frozen = await frames()
            await camera.restart()
            back = time.monotonic()
            await _poll(lambda: _state(tile, "online"), 30, "the tile to say online again")
            await _poll(lambda: _at_least(frames, frozen + 20), 20, "the same tile to decode video again")
            print(f"console tile: online and playing {time.monotonic() - back:.2f} s after the restart")
            # the viewer resumed on its existing WHEP session: no new session, no reconnect
            assert hub.app[MEDIA].session_ids(cam_id) == sessions
            assert await tile.get_attribute("data-video") == "playing"


async def _state(tile: Any, wanted: str) -> bool:
    return bool(await tile.get_attribute("data-state") == wanted)


async def _at_least(frames: Any, n: int) -> bool:
    return bool(await frames() >= n)


# A browser whose WebRTC cannot take H.264 (its video transceivers offer every other codec).
NO_H264 = """(() => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (...args) {
    const transceiver = add.apply(this, args);
    if (transceiver.receiver.track.kind === 'video') {
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
      transceiver.setCodecPreferences(codecs.filter((c) => !/h264/i.test(c.mimeType)));
    }
    return transceiver;
  };
})();"""


@pytest.mark.timeout(120)
async def test_a_browser_without_h264_is_told_so_on_the_tile_not_left_black(
    scene_clip: Path, tmp_path: Path, model_data_dir: Path
) -> None:
    async with RtspServer(scene_clip) as camera, running_hub(hub_config(tmp_path, model_data_dir)) as hub:
        cam_id = await _add_camera(hub, camera, "Gate 4")
        async with chromium() as browser:
            page = await browser.new_page()
            await page.add_init_script(NO_H264)
            offers: list[int] = []
            page.on("response", lambda r: offers.append(r.status) if r.url.endswith(f"/whep/cameras/{cam_id}") else None)
            await _console(page, hub, "commander")
            tile = page.locator(f"[data-testid=video-tile][data-camera-id='{cam_id}']")
            await _poll(lambda: _video_phase(tile, "error"), 20, "the tile to give up with a reason")
            text = await tile.locator(".tile-overlay").inner_text()
            assert "H.264" in text, text
            await asyncio.sleep(4)  # a retrying tile would have asked again by now (backoff 1 s, 2 s)
            assert offers == [406], offers
            assert await tile.get_attribute("data-video") == "error"
            assert hub.app[MEDIA].session_ids(cam_id) == []  # nothing was set up for it on the hub


async def _video_phase(tile: Any, wanted: str) -> bool:
    return bool(await tile.get_attribute("data-video") == wanted)
