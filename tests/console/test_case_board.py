"""The case board's new steps in real Chromium: duty registers a hotline case and files it, the
commander dispatches it by the rules and suspends and resumes it, the field page reports progress
and a patrol finding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, running_hub
from tests.support.browser import chromium


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    config = hub_config(tmp_path / "var", model_data_dir, analytics={"local_workers": 0})
    async with running_hub(config) as running:
        for name in ("admin", "commander", "duty", "field1"):
            await running.login(name)
        yield running


async def _login(page: Page, hub: RunningHub, path: str, username: str) -> None:
    await page.goto(f"{hub.url}{path}")
    await page.fill("[data-testid=login-username]", username)
    await page.fill("[data-testid=login-password]", PASSWORDS[username])
    await page.click("[data-testid=login-submit]")


async def _status(hub: RunningHub, case_id: int) -> str:
    _, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "duty")
    return str(case["status"])


@pytest.mark.slow
async def test_board_intake_file_dispatch_suspend_and_field_progress(hub: RunningHub) -> None:
    status, _ = await hub.call(
        "PUT", "/api/v1/dispatch-rules", "admin", json=[{"region": "city", "team_id": hub.teams["patrol"]["id"]}]
    )
    assert status == 200
    async with chromium() as browser:
        duty = await browser.new_page()
        await _login(duty, hub, "/", "duty")
        await duty.click("[data-testid=tab-cases]")
        box = duty.locator("[data-testid=new-case]")
        await box.locator("summary").click()
        await box.locator("[data-testid=new-case-submit]").click()  # no location: refused on the page
        assert await box.locator("[data-testid=new-case-error]").inner_text()
        await box.locator("[data-testid=new-case-category]").select_option("dirty_road")
        await box.locator("[data-testid=new-case-location]").fill("Renmin Road 12")
        await box.locator("[data-testid=new-case-contact]").fill("Mr Li 139")
        await box.locator("[data-testid=new-case-submit]").click()
        row = duty.locator("[data-testid=case-item][data-status=reported]")
        await row.wait_for(timeout=10_000)
        case_id = int(await row.get_attribute("data-case-id") or 0)
        await row.locator(".case-row").click()
        await duty.click("[data-testid=case-file]")
        await duty.locator(f"[data-testid=case-item][data-case-id='{case_id}'][data-status=filed]").wait_for(timeout=10_000)
        assert await _status(hub, case_id) == "filed"

        commander = await browser.new_page()
        await _login(commander, hub, "/", "commander")
        await commander.click("[data-testid=tab-cases]")
        crow = commander.locator(f"[data-testid=case-item][data-case-id='{case_id}']")
        await crow.locator(".case-row").click()
        await commander.click("[data-testid=case-auto-dispatch]")
        await commander.locator(f"[data-testid=case-item][data-case-id='{case_id}'][data-status=dispatched]").wait_for(timeout=10_000)
        # suspend needs a reason; then resume
        await commander.click("[data-testid=case-suspend]")
        assert await _status(hub, case_id) == "dispatched"
        await commander.fill("[data-testid=case-suspend-reason]", "road closed for works")
        await commander.click("[data-testid=case-suspend]")
        await commander.locator(f"[data-testid=case-item][data-case-id='{case_id}'][data-status=suspended]").wait_for(timeout=10_000)
        await commander.click("[data-testid=case-resume]")
        await commander.locator(f"[data-testid=case-item][data-case-id='{case_id}'][data-status=dispatched]").wait_for(timeout=10_000)
        # the clock line shows the handling stage (the page is in Chinese by default)
        assert "处置时限" in await commander.inner_text("[data-testid=case-clock]")

        field = await browser.new_page()
        await _login(field, hub, "/field", "field1")
        branches = field.locator("[data-testid=field-branches]")
        await branches.wait_for(timeout=15_000)
        await branches.locator("summary").click()
        await branches.locator("[data-testid=field-progress-note]").fill("sweeper on the way")
        await branches.locator("[data-testid=field-progress]").click()
        for _ in range(50):
            _, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "duty")
            if case["timeline"][-1]["action"] == "progress":
                break
            await field.wait_for_timeout(100)
        assert case["timeline"][-1]["note"] == "sweeper on the way"
        assert [e["action"] for e in case["timeline"]] == ["intake", "file", "dispatch", "suspend", "resume", "progress"]
        # a patrol finding from the field page
        patrol = field.locator("[data-testid=field-patrol] [data-testid=new-case]")
        await patrol.locator("summary").click()
        await patrol.locator("[data-testid=new-case-category]").select_option("manhole_cover")
        await patrol.locator("[data-testid=new-case-location]").fill("Gate 7")
        await patrol.locator("[data-testid=new-case-submit]").click()
        for _ in range(50):
            _, cases = await hub.call("GET", "/api/v1/cases", "duty")
            if any(c["source"] == "patrol" for c in cases):
                break
            await field.wait_for_timeout(100)
        found = [c for c in cases if c["source"] == "patrol"]
        assert len(found) == 1 and found[0]["status"] == "reported" and found[0]["category"] == "manhole_cover"
        assert found[0]["reported_by"] == hub.users["field1"]["id"]
