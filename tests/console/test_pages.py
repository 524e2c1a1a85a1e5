"""The console pages as people use them: language, time zone, roles, dismissing a flag."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from playwright.async_api import BrowserContext, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from fusionhub.console.keys import ANALYTICS
from tests.analytics.scenes import asset
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, raise_flag, running_hub
from tests.support.browser import chromium

STATIC = Path(__file__).resolve().parents[2] / "fusionhub" / "console" / "static"
HUB_TZ = "America/New_York"  # far from the test machine's UTC, so a wrong zone shows


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    config = hub_config(tmp_path / "var", model_data_dir, timezone=HUB_TZ)
    async with running_hub(config) as running:
        for name in ("admin", "duty", "field1"):
            await running.login(name)
        yield running


async def _login(page: Page, hub: RunningHub, path: str, username: str) -> None:
    await page.goto(f"{hub.url}{path}")
    await page.fill("[data-testid=login-username]", username)
    await page.fill("[data-testid=login-password]", PASSWORDS[username])
    await page.click("[data-testid=login-submit]")


async def _camera_with_zone(hub: RunningHub) -> tuple[int, int]:
    status, cam = await hub.call(
        "POST", "/api/v1/cameras", "admin",
        json={"name": "North gate", "url": "rtsp://127.0.0.1:9/none", "region": "city"},
    )
    assert status == 201
    status, zone = await hub.call(
        "POST", f"/api/v1/cameras/{cam['id']}/zones", "admin",
        json={"name": "lane", "kind": "road", "polygon": [[0, 0.5], [1, 0.5], [1, 1]]},
    )
    assert status == 201
    return int(cam["id"]), int(zone["id"])


def test_every_visible_string_goes_through_the_translation_table() -> None:
    """No Chinese text outside i18n.js, and every key the pages use exists in both languages."""
    table = (STATIC / "i18n.js").read_text(encoding="utf-8")
    entries = dict(re.findall(r'^\s*"([a-z0-9_.]+)":\s*\[(.*)\],?\s*$', table, re.MULTILINE))
    assert len(entries) > 50
    for key, pair in entries.items():
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', pair)
        assert len(parts) == 2 and all(parts), f"{key} needs a zh-CN and an English text"
    used: set[str] = set()
    for path in list(STATIC.glob("*.js")) + list(STATIC.glob("*.html")):
        if path.name == "i18n.js":
            continue
        text = path.read_text(encoding="utf-8")
        # HTML may carry the zh-CN text as a no-script fallback, but only the table's own text
        for key, fallback in re.findall(r'data-i18n="([a-z0-9_.]+)"[^>]*>([^<]*)<', text):
            if fallback.strip():
                zh = re.findall(r'"((?:[^"\\]|\\.)*)"', entries.get(key, ""))[:1]
                assert [fallback.strip()] == zh, f"{path.name}: fallback for {key} differs from the table"
        text = re.sub(r'(data-i18n="[a-z0-9_.]+"[^>]*>)[^<]*<', r"\1<", text)
        assert not re.search(r"[\u4e00-\u9fff]", text), f"{path.name} has Chinese text outside the table"
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', text))
        used |= set(re.findall(r'data-i18n(?:-[a-z]+)?="([a-z0-9_.]+)"', text))
    missing = sorted(k for k in used if k not in entries)
    assert not missing, f"keys used but not translated: {missing}"


@pytest.mark.slow
async def test_chinese_by_default_english_on_request_times_in_hub_zone(hub: RunningHub) -> None:
    camera_id, zone_id = await _camera_with_zone(hub)
    flag_id = await raise_flag(hub, camera_id, zone_id)
    status, flag = await hub.call("GET", f"/api/v1/flags/{flag_id}", "duty")
    assert status == 200
    expected = datetime.fromtimestamp(flag["raised_at"], ZoneInfo(HUB_TZ)).strftime("%H:%M")
    wrong = datetime.fromtimestamp(flag["raised_at"], ZoneInfo("UTC")).strftime("%H:%M")

    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(hub.url + "/")
        assert (await page.inner_text("[data-testid=login-submit]")).strip() == "登录"
        await page.click("[data-testid=lang-switch]")
        assert (await page.inner_text("[data-testid=login-submit]")).strip() == "Log in"
        await page.click("[data-testid=lang-switch]")
        await _login(page, hub, "/", "duty")
        await page.click("[data-testid=tab-review]")
        item = page.locator(f"[data-testid=flag-item][data-flag-id='{flag_id}']")
        await item.wait_for(timeout=15_000)
        text = await item.inner_text()
        assert expected in text, (expected, text)
        assert expected == wrong or wrong not in text
        assert re.search(r"[\u4e00-\u9fff]", await page.inner_text("body"))
        await page.click("[data-testid=lang-switch]")
        switch_label = await page.inner_text("[data-testid=lang-switch]")
        assert switch_label.strip() == "中文"  # a language is named in its own language
        body = (await page.inner_text("body")).replace(switch_label.strip(), "")
        # every label is English now (the test's own data is ASCII, so any Chinese left is untranslated UI)
        assert not re.search(r"[\u4e00-\u9fff]", body), body
        assert expected in await item.inner_text()


@pytest.mark.slow
async def test_dismiss_needs_a_reason_and_records_it(hub: RunningHub) -> None:
    camera_id, zone_id = await _camera_with_zone(hub)
    flag_id = await raise_flag(hub, camera_id, zone_id)
    async with chromium() as browser:
        page = await browser.new_page()
        await _login(page, hub, "/", "duty")
        await page.click("[data-testid=tab-review]")
        item = page.locator(f"[data-testid=flag-item][data-flag-id='{flag_id}']")
        await item.wait_for(timeout=15_000)
        await item.locator("[data-testid=flag-dismiss]").click()
        await item.locator("[data-testid=dismiss-submit]").click()
        status, flag = await hub.call("GET", f"/api/v1/flags/{flag_id}", "duty")
        assert flag["status"] == "pending"  # an empty reason was refused, nothing changed
        await item.locator("[data-testid=dismiss-reason]").fill("delivery van, loading allowed")
        await item.locator("[data-testid=dismiss-submit]").click()
        await item.wait_for(state="detached", timeout=10_000)
    status, flag = await hub.call("GET", f"/api/v1/flags/{flag_id}", "duty")
    assert status == 200
    assert flag["status"] == "dismissed" and flag["dismiss_reason"] == "delivery van, loading allowed"
    assert flag["reviewed_by"] == hub.users["duty"]["id"]


@pytest.mark.slow
async def test_field_member_on_console_is_sent_to_field_page(hub: RunningHub) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await _login(page, hub, "/", "field1")
        await page.wait_for_url(re.compile(r".*/field$"), timeout=10_000)


async def _admin_cameras_page(browser: BrowserContext, hub: RunningHub) -> Page:
    """The admin's cameras page, in English."""
    page = await browser.new_page()
    await page.goto(hub.url + "/")
    await page.click("[data-testid=lang-switch]")
    await _login(page, hub, "/", "admin")
    await page.click("[data-testid=tab-cameras]")
    return page


@pytest.mark.slow
async def test_admin_sees_the_analytics_workers_on_the_cameras_page(hub: RunningHub) -> None:
    async with chromium() as browser:
        page = await _admin_cameras_page(browser, hub)
        row = page.locator("[data-testid=worker-row]")
        await row.first.wait_for(timeout=15_000)
        assert await row.count() == 1  # the hub's one local worker
        cells = await row.first.locator("td").all_inner_texts()
        assert cells[0].startswith("local-0[") and cells[2].startswith("onnxruntime/"), cells
        # how many frames it runs through the model at once: none answered yet, at most analytics.batch_max
        assert cells[6] == "– on average (at most 4)", cells
        assert await row.first.get_attribute("data-state") in ("idle", "busy")
        summary = await page.inner_text("[data-testid=analytics-summary]")
        assert "yolo26n" in summary and "1 of 1 ready" in summary, summary
        load = page.locator("[data-testid=analytics-load]")
        # a hub just started, with nothing sampled yet: measuring, or idle; never "behind"
        assert await load.get_attribute("data-state") in ("warming_up", "idle"), await load.inner_text()
        assert (await load.inner_text()).startswith(("Measuring whether analytics keeps up", "No samples in the last"))
        page2 = await browser.new_page()  # the duty officer has no cameras page, and no worker table
        await _login(page2, hub, "/", "duty")
        await page2.locator("[data-testid=tab-review]").wait_for()
        assert await page2.locator("[data-testid=worker-table]").count() == 0
        # nor a warning on the review queue while analytics keeps up
        await page2.wait_for_function("document.querySelector('[data-testid=analytics-behind]')?.dataset.state")
        assert await page2.locator("[data-testid=analytics-behind]").is_hidden()


@pytest.mark.slow
async def test_admin_and_duty_officers_are_told_when_analytics_falls_behind(tmp_path: Path, model_data_dir: Path) -> None:
    window = 10.0
    config = hub_config(tmp_path / "var", model_data_dir, analytics={"load_window_s": window})
    async with running_hub(config) as hub, chromium() as browser:
        for name in ("admin", "outsider"):
            await hub.login(name)
        camera_id, _ = await _camera_with_zone(hub)
        analytics = hub.app[ANALYTICS]
        bus = asset("bus.jpg")
        pictures = [bus, np.ascontiguousarray(bus[:, ::-1]), bus // 3]  # each differs: no motion-gate shortcut

        async def overload() -> None:  # some 300 samples a second for one worker, until the pages are checked
            # (a fast CPU runs the model at 640 px in 15 ms: 50 a second no longer overloaded it)
            for i in range(1_000_000):
                analytics.submit(camera_id, time.time(), pictures[i % 3])
                await asyncio.sleep(0.003)

        flood = asyncio.create_task(overload())
        try:
            await asyncio.sleep(window + 1)
            load = analytics.load_report()
            assert load["state"] == "behind", load
            page = await _admin_cameras_page(browser, hub)
            line = page.locator("[data-testid=analytics-load]")
            await page.locator("[data-testid=analytics-load][data-state=behind]").wait_for(timeout=10_000)
            # the camera list may come after the workers' status (the hub is flooded): then the name follows
            with contextlib.suppress(PlaywrightTimeout):
                await page.wait_for_function(
                    "document.querySelector('[data-testid=analytics-load]').textContent.includes('North gate (')",
                    timeout=10_000,
                )
            text = await line.inner_text()
            assert text.startswith("Behind over the last") and "replaced by newer ones before they were analysed" in text, text
            assert "North gate (" in text and "Add workers" in text, text  # the camera, by its name
            assert await line.get_attribute("class") == "error"
            # the duty officer reviewing flags is told they come late, and which cameras lose most
            duty = await browser.new_page()  # English already: the admin's page chose it for this browser
            await _login(duty, hub, "/", "duty")
            banner = duty.locator("[data-testid=analytics-behind][data-state=behind]")
            await banner.wait_for(timeout=10_000)
            text = await banner.inner_text()
            assert text.startswith("Automatic analysis is running behind") and "flags come late" in text, text
            assert text.endswith("Most affected: North gate."), text
            # a duty officer of another region hears that analytics is behind, not which cameras
            status, seen = await hub.call("GET", "/api/v1/analytics/load", "outsider")
            assert status == 200 and seen["state"] == "behind" and seen["slowest"] == [], seen
        finally:
            flood.cancel()


@pytest.mark.slow
async def test_the_duty_banner_follows_the_workers_without_a_reload(tmp_path: Path, model_data_dir: Path) -> None:
    # a long back-off: the hub stays without a worker for a while after the kill
    config = hub_config(tmp_path / "var", model_data_dir, analytics={"restart_backoff_s": 5.0})
    async with running_hub(config) as hub, chromium() as browser:
        await hub.login("admin")
        await _camera_with_zone(hub)
        page = await browser.new_page()
        await page.goto(hub.url + "/")
        await page.click("[data-testid=lang-switch]")
        await _login(page, hub, "/", "duty")
        await page.locator("[data-testid=tab-review]").wait_for()
        # every state the banner shows, in order (a reload would lose the list)
        await page.evaluate("""() => {
          const el = document.querySelector('[data-testid=analytics-behind]');
          window.bannerStates = [el.dataset.state || ''];
          new MutationObserver(() => window.bannerStates.push(el.dataset.state))
            .observe(el, { attributes: true, attributeFilter: ['data-state'] });
        }""")
        banner = page.locator("[data-testid=analytics-behind]")
        # the worker loads its model: the banner says no worker is ready, then leaves by itself
        await page.wait_for_function(
            "['warming_up', 'idle', 'keeping_up'].includes(document.querySelector('[data-testid=analytics-behind]').dataset.state)",
            timeout=30_000,
        )
        assert await banner.is_hidden()
        (pid,) = hub.app[ANALYTICS].local_pids()
        os.kill(pid, signal.SIGKILL)
        # pushed, not waited for: the hub notices the death within its supervision step
        stopped = page.locator("[data-testid=analytics-behind][data-state=no_workers]")
        await stopped.wait_for(state="visible", timeout=8_000)
        assert (await stopped.inner_text()).startswith("Automatic analysis has stopped: no analytics worker is ready")
        # the replacement comes after the back-off and its model load: the banner goes
        await page.wait_for_function(
            "document.querySelector('[data-testid=analytics-behind]').dataset.state === 'warming_up'", timeout=60_000
        )
        assert await banner.is_hidden()
        states = await page.evaluate("window.bannerStates")
        assert states[-2:] == ["no_workers", "warming_up"], states
