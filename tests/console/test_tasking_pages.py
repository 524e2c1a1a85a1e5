"""One-click tasking in real Chromium pages: a commander's instruction reaches two field pages
live, one acknowledges, and the commander's view shows at once who has not; the statistics tab
draws its charts."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from fusionhub.console.keys import DISPATCH
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, running_hub
from tests.support.browser import chromium

pytestmark = pytest.mark.slow

FIELD2_PASSWORD = "field2-pass-1"


async def _login(page: Page, hub: RunningHub, path: str, username: str, password: str) -> None:
    await page.goto(f"{hub.url}{path}")
    await page.fill("[data-testid=login-username]", username)
    await page.fill("[data-testid=login-password]", password)
    await page.click("[data-testid=login-submit]")


@pytest.mark.timeout(120)
async def test_one_click_task_reaches_two_field_pages_and_the_commander_sees_who_has_not(
    tmp_path: Path, model_data_dir: Path
) -> None:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as hub, chromium() as browser:
        dispatch = hub.app[DISPATCH]
        team2 = await dispatch.create_team("Patrol team 2", "city")
        await dispatch.create_user("field2", FIELD2_PASSWORD, "field", "city", "Field Qian", team_id=team2["id"])

        field1, field2, commander = [await browser.new_page() for _ in range(3)]
        await _login(field1, hub, "/field", "field1", PASSWORDS["field1"])
        await _login(field2, hub, "/field", "field2", FIELD2_PASSWORD)
        for page in (field1, field2):
            await page.locator("[data-testid=connection][data-state=live]").wait_for(timeout=15_000)

        await _login(commander, hub, "/", "commander", PASSWORDS["commander"])
        await commander.click("[data-testid=tab-tasking]")
        compose = commander.locator("[data-testid=tasking-compose]")
        await compose.locator(".pick[data-name='Patrol team 2'] input").wait_for(timeout=10_000)
        await compose.locator("[data-testid=tasking-kind][data-kind=emergency]").click()
        await compose.locator("[data-testid=tasking-text]").fill("Water main burst on Jiefang Rd: close the lane")
        await compose.locator(".pick[data-name='Patrol team 1'] input").check()
        await compose.locator(".pick[data-name='Patrol team 2'] input").check()
        await compose.locator("[data-testid=tasking-send]").click()

        # both field pages get it live (no reload), with the Acknowledge button
        cards = [page.locator("[data-testid=instruction-card]") for page in (field1, field2)]
        for card in cards:
            await card.wait_for(timeout=10_000)
            assert "Water main burst" in await card.inner_text()
            assert await card.get_attribute("data-status") == "pending"
        await cards[0].locator("[data-testid=instruction-ack]").click()
        await field1.locator("[data-testid=instruction-card][data-status=acknowledged]").wait_for(timeout=10_000)

        # the commander sees, without reloading, that team 1 acknowledged and team 2 has not
        item = commander.locator("[data-testid=instruction-item]")
        await item.locator("[data-testid=recipient-row][data-name='Patrol team 1'][data-status=acknowledged]").wait_for(
            timeout=10_000
        )
        waiting = await item.locator("[data-testid=instruction-waiting]").inner_text()
        assert "Patrol team 2" in waiting and "Patrol team 1" not in waiting
        pending = item.locator("[data-testid=recipient-row][data-name='Patrol team 2']")
        assert await pending.get_attribute("data-status") == "pending"
        assert await cards[1].get_attribute("data-status") == "pending"  # field 2 still has to answer

        # the statistics tab draws its counters and charts (plain SVG)
        await commander.click("[data-testid=tab-stats]")
        await commander.locator("[data-testid=stats-total-filed]").wait_for(timeout=10_000)
        assert await commander.locator("[data-testid=stats-trend] svg.chart polyline").count() == 3
