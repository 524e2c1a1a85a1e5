"""In the console: per-rule precision above the review queue, and "still present" on an open case."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import pytest

from fusionhub.console.keys import ANALYTICS, BUS
from fusionhub.signaling.messages import CameraStatus, Topic, payload
from tests.analytics.scenes import asset
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, raise_flag, running_hub
from tests.support.browser import chromium

pytestmark = pytest.mark.slow


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        for name in ("admin", "duty"):
            await running.login(name)
        yield running


async def test_precision_and_still_present_in_the_console(hub: RunningHub) -> None:
    _, cam = await hub.call("POST", "/api/v1/cameras", "admin",
                            json={"name": "Stop 7", "url": "rtsp://127.0.0.1:9/s", "region": "city"})
    lanes = []
    for name in ("lane A", "lane B"):
        _, zone = await hub.call("POST", f"/api/v1/cameras/{cam['id']}/zones", "admin",
                                 json={"name": name, "polygon": [[0, 0.5], [1, 0.5], [1, 1]]})
        lanes.append(zone["id"])
    confirmed = await raise_flag(hub, cam["id"], lanes[0])
    dismissed = await raise_flag(hub, cam["id"], lanes[1])
    _, reply = await hub.call("POST", f"/api/v1/flags/{confirmed}/confirm", "duty", json={})
    case_id = reply["case"]["id"]
    await hub.call("POST", f"/api/v1/flags/{dismissed}/dismiss", "duty", json={"reason": "loading"})
    pending = await raise_flag(hub, cam["id"], lanes[1])
    await raise_flag(hub, cam["id"], lanes[0])  # lane A's case is open: attaches, "still present"

    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{hub.url}/")
        await page.fill("[data-testid=login-username]", "duty")
        await page.fill("[data-testid=login-password]", PASSWORDS["duty"])
        await page.click("[data-testid=login-submit]")
        await page.click("[data-testid=tab-review]")
        await page.locator(f"[data-testid=flag-item][data-flag-id='{pending}']").wait_for(timeout=15_000)
        precision = page.locator("[data-testid=precision]")
        await precision.wait_for(timeout=10_000)
        text = await precision.inner_text()
        assert "审核准确率" in text and "占道" in text and "50%" in text, text
        assert await page.locator("[data-testid=flag-item]").count() == 1  # the attached flag is not queued
        await page.click("[data-testid=lang-switch]")
        text = await precision.inner_text()
        assert "Precision from reviews" in text and "1 confirmed of 2 reviewed" in text, text
        await page.click("[data-testid=tab-cases]")
        await page.locator(f"[data-testid=case-item][data-case-id='{case_id}'] button").first.click()
        still = page.locator("[data-testid=still-present]")
        await still.wait_for(timeout=10_000)
        assert "still present at" in await still.inner_text()


SUB_SECRET = "sub-Secret-77"


async def test_admin_captures_a_bin_reference_from_the_cameras_tab(hub: RunningHub) -> None:
    """…and sees which stream analytics decodes: a camera's substream (no credentials shown), or
    the main stream."""
    _, cam = await hub.call("POST", "/api/v1/cameras", "admin",
                            json={"name": "Stop 7", "url": "rtsp://127.0.0.1:9/s", "region": "city"})
    status, sub_cam = await hub.call(
        "POST", "/api/v1/cameras", "admin",
        json={"name": "Stop 8", "url": "rtsp://127.0.0.1:9/main", "region": "city",
              "substream_url": f"rtsp://op:{SUB_SECRET}@127.0.0.1:9/sub"},
    )
    assert status == 201 and sub_cam["substream_has_credentials"] is True, sub_cam
    _, bin_zone = await hub.call("POST", f"/api/v1/cameras/{cam['id']}/zones", "admin",
                                 json={"name": "bin 4", "kind": "bin", "polygon": [[0.45, 0.8], [0.8, 0.8], [0.8, 0.98]]})
    analytics = hub.app[ANALYTICS]
    frame = cv2.resize(asset("bus.jpg"), (405, 540), interpolation=cv2.INTER_AREA)
    deadline = time.monotonic() + 60
    while analytics.latest(cam["id"]) is None:  # the live picture, as the sampler would hand it over
        assert time.monotonic() < deadline
        analytics.submit(cam["id"], time.time(), frame)
        await asyncio.sleep(0.3)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{hub.url}/")
        await page.fill("[data-testid=login-username]", "admin")
        await page.fill("[data-testid=login-password]", PASSWORDS["admin"])
        await page.click("[data-testid=login-submit]")
        await page.click("[data-testid=tab-cameras]")
        reference = page.locator("[data-testid=bin-reference]")
        await reference.wait_for(timeout=10_000)
        assert await reference.inner_text() == "尚无基准画面"
        analysed = page.locator("[data-testid=camera-row] [data-testid=camera-analysed]")
        assert await analysed.all_inner_texts() == ["主码流", "子码流 rtsp://127.0.0.1:9/sub"]
        assert SUB_SECRET not in await page.content()
        # the substream drops: the gateway's status event says so, and the table shows it at once
        down = CameraStatus(camera_id=sub_cam["id"], state="online", since=time.time(), substream_online=False)
        await hub.app[BUS].publish(Topic.CAMERA_STATUS, payload(down))
        badge = page.locator(f"[data-camera-id='{sub_cam['id']}'] [data-testid=substream-down]")
        await badge.wait_for(timeout=10_000)
        assert await badge.inner_text() == "子码流中断，暂用主码流"
        back = down.model_copy(update={"substream_online": True})
        await hub.app[BUS].publish(Topic.CAMERA_STATUS, payload(back))
        await badge.wait_for(state="detached", timeout=10_000)
        await page.click(f"[data-testid=capture-reference][data-zone-id='{bin_zone['id']}']")
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=bin-reference]').textContent.startsWith('基准画面')",
            timeout=10_000,
        )
    _, zone = await hub.call("GET", f"/api/v1/cameras/{cam['id']}/zones/{bin_zone['id']}", "admin")
    assert zone["reference_url"] is not None
