"""Push-to-talk in real headless Chromium: field pages and a commander console in a case channel.

Chromium's fake microphone sends a beep. A field member holds Space and talks: the others
receive audio energy, while a misbehaving page that sends without the floor is not forwarded. A
late joiner sees who is talking; the commander pre-empts with the big button; the maximum talk
time and a dead microphone (no media) take the floor back; the case timeline lists the bursts
and each recording plays back in PyAV for about as long as the burst lasted.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.async_api import Page

from fusionhub.console.keys import DISPATCH, INTERCOM
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, raise_flag, running_hub
from tests.support.browser import chromium

pytestmark = pytest.mark.slow

MORE = {"field_b": "Field Qian", "field_c": "Field Sun"}
PASSWORD = "Ptt-pass-1"
MAX_TALK_S = 6.0
GRACE_S = 1.0
NO_MEDIA_S = 1.5


async def poll(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def login(page: Page, hub: RunningHub, path: str, username: str) -> None:
    await page.goto(f"{hub.url}{path}")
    await page.fill("[data-testid=login-username]", username)
    await page.fill("[data-testid=login-password]", PASSWORDS.get(username, PASSWORD))
    await page.click("[data-testid=login-submit]")


async def join(page: Page, room_id: str) -> None:
    room = page.locator(f"[data-testid=ptt-room][data-room-id='{room_id}']")
    await room.wait_for(timeout=15_000)
    await room.locator("[data-testid=ptt-join]").click()
    channel = page.locator("[data-testid=ptt-channel][data-state=live]")
    await channel.wait_for(timeout=20_000)
    await page.evaluate("document.activeElement && document.activeElement.blur()")


async def rx(page: Page) -> dict[str, float]:
    """The page's received audio so far: packets and total audio energy (getStats)."""
    result: dict[str, float] = await page.evaluate(
        """async () => {
            const pc = window.fh.intercom.channel.pc;
            for (const s of (await pc.getStats()).values()) {
                if (s.type === 'inbound-rtp' && s.kind === 'audio')
                    return {packets: s.packetsReceived || 0, energy: s.totalAudioEnergy || 0};
            }
            return {packets: 0, energy: 0};
        }"""
    )
    return result


async def channel(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("window.fh.intercom.debug()")
    return state


@pytest.mark.timeout(240)
async def test_three_browsers_share_a_case_channel(tmp_path: Path, model_data_dir: Path) -> None:
    config = hub_config(
        tmp_path / "var",
        model_data_dir,
        analytics={"local_workers": 0},
        intercom={"floor": {"no_media_s": NO_MEDIA_S, "max_talk_s": MAX_TALK_S, "grace_s": GRACE_S}},
    )
    async with running_hub(config) as hub, chromium() as browser:
        team = hub.teams["patrol"]["id"]
        users = {"field1": hub.users["field1"]}
        for name, display in MORE.items():
            users[name] = await hub.app[DISPATCH].create_user(name, PASSWORD, "field", "city", display, team_id=team)
        for name in ("admin", "duty", "commander"):
            await hub.login(name)

        # a case, and its channel formed by the commander (no task yet: the region's teams)
        status, cam = await hub.call("POST", "/api/v1/cameras", "admin",
                                     json={"name": "Gate", "url": "rtsp://127.0.0.1:9/x", "region": "city"})
        assert status == 201
        status, zone = await hub.call("POST", f"/api/v1/cameras/{cam['id']}/zones", "admin", json={
            "name": "lane", "kind": "road", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 5})
        flag_id = await raise_flag(hub, cam["id"], zone["id"])
        status, confirmed = await hub.call("POST", f"/api/v1/flags/{flag_id}/confirm", "duty", json={})
        case_id = confirmed["case"]["id"]
        room_id = f"case:{case_id}"

        # the commander forms the case's channel from the case board and is in it at once
        a, b, c, cmd = [await browser.new_page() for _ in range(4)]
        await login(cmd, hub, "/", "commander")
        await cmd.click("[data-testid=tab-cases]")
        await cmd.locator(f"[data-testid=case-item][data-case-id='{case_id}'] button").click()
        await cmd.locator("[data-testid=case-channel]").click()
        await cmd.locator("[data-testid=ptt-channel][data-state=live]").wait_for(timeout=20_000)
        await cmd.evaluate("document.activeElement && document.activeElement.blur()")
        status, room = await hub.call("GET", f"/api/v1/rooms/{room_id}", "commander")
        assert status == 200 and team in room["team_ids"] and len(room["participants"]) == 1

        for name, page in {"field1": a, "field_b": b, "field_c": c}.items():
            await login(page, hub, "/field", name)
        await join(a, room_id)
        await join(b, room_id)

        # A holds Space: the floor is A's, B sees A talking
        await a.keyboard.down("Space")
        await poll(lambda: a.locator("[data-testid=ptt-channel][data-mine=talking]").count(), 5, "A granted")
        a_id = str(users["field1"]["id"])
        await poll(lambda: b.locator(f"[data-testid=ptt-channel][data-holder='{a_id}']").count(), 5, "B sees A talking")

        # C joins late and sees at once who is talking
        await join(c, room_id)
        floor_text = await c.locator("[data-testid=ptt-floor]").inner_text()
        assert "Field Zhao" in floor_text
        assert (await channel(c))["floor"]["holder"]["user_id"] == users["field1"]["id"]

        # B and C receive A's audio (energy rises); A hears nothing of itself
        b0, c0, a0 = await rx(b), await rx(c), await rx(a)
        await asyncio.sleep(2.5)
        b1, c1, a1 = await rx(b), await rx(c), await rx(a)
        assert b1["energy"] > b0["energy"] and c1["energy"] > c0["energy"]
        assert b1["packets"] - b0["packets"] > 80 and c1["packets"] - c0["packets"] > 80
        assert a1["packets"] == a0["packets"]
        # the talker level reaches the listeners' meters (from the RTP audio-level extension)
        await poll(lambda: b.evaluate("window.fh.intercom.debug().level > 0.2"), 5, "B's level meter to move")

        # A lets go and talks again (a fresh maximum talk time)
        await a.keyboard.up("Space")
        await poll(lambda: b.locator("[data-testid=ptt-channel][data-floor=idle]").count(), 5, "the floor idle")
        await a.keyboard.down("Space")
        await poll(lambda: a.locator("[data-testid=ptt-channel][data-mine=talking]").count(), 5, "A granted again")

        # B misbehaves: sends its microphone without the floor. The hub drops it: C still gets one
        # stream's worth (about 50 packets/s, not 100), and the hub counts B's packets as dropped
        await b.evaluate("(() => { const ch = window.fh.intercom.channel; ch.sender.replaceTrack(ch.mic.getAudioTracks()[0]); })()")
        c2 = await rx(c)
        await asyncio.sleep(2.0)
        c3 = await rx(c)
        assert 60 < c3["packets"] - c2["packets"] < 140, c3["packets"] - c2["packets"]
        live = hub.app[INTERCOM].room(room_id)
        assert live is not None
        session_b = next(s for s in live.sessions.values() if s.participant.user_id == users["field_b"]["id"])
        assert session_b.dropped_in > 50

        # A lets go: nobody holds the floor; B still sends, but C receives nothing at all
        await a.keyboard.up("Space")
        await poll(lambda: c.locator("[data-testid=ptt-channel][data-floor=idle]").count(), 5, "the floor idle")
        await asyncio.sleep(0.3)
        c4 = await rx(c)
        await asyncio.sleep(1.5)
        assert (await rx(c))["packets"] == c4["packets"]
        await b.evaluate("window.fh.intercom.channel.sender.replaceTrack(null)")

        # A talks again; the commander pre-empts with the big button
        await a.keyboard.down("Space")
        await poll(lambda: a.locator("[data-testid=ptt-channel][data-mine=talking]").count(), 5, "A granted a third time")
        await asyncio.sleep(1.0)
        talk = cmd.locator("[data-testid=ptt-talk]")
        await talk.hover()
        await cmd.mouse.down()
        cmd_id = str((await hub.call("GET", "/api/v1/me", "commander"))[1]["user"]["id"])
        await poll(lambda: c.locator(f"[data-testid=ptt-channel][data-holder='{cmd_id}']").count(), 5, "C sees the commander")
        await poll(lambda: a.locator("[data-testid=ptt-channel][data-mine=revoked]").count(), 5, "A revoked")
        assert "higher priority" in (await a.locator("[data-testid=ptt-mine]").inner_text()) or "插话" in (
            await a.locator("[data-testid=ptt-mine]").inner_text()
        )
        assert await a.evaluate("window.fh.intercom.channel.sender.track === null")  # A stopped sending
        await a.keyboard.up("Space")
        a5 = await rx(a)
        await asyncio.sleep(1.0)
        assert (await rx(a))["packets"] - a5["packets"] > 30  # A now hears the commander

        # the commander keeps holding: the maximum talk time revokes, the grace ends it
        await poll(lambda: cmd.locator("[data-testid=ptt-channel][data-mine=revoked]").count(), MAX_TALK_S + 2, "max talk")
        await poll(lambda: b.locator("[data-testid=ptt-channel][data-floor=idle]").count(), GRACE_S + 3, "idle after grace")
        await cmd.mouse.up()

        # C's microphone dies while C asks for the floor: no media takes it back
        await c.evaluate("window.fh.intercom.channel.mic.getAudioTracks()[0].stop()")
        await c.keyboard.down("Space")
        await poll(lambda: b.locator(f"[data-testid=ptt-channel][data-holder='{users['field_c']['id']}']").count(), 5, "C granted")
        granted_at = time.monotonic()
        await poll(lambda: c.locator("[data-testid=ptt-channel][data-mine=revoked]").count(), NO_MEDIA_S + 3, "no-media revoke")
        assert time.monotonic() - granted_at > NO_MEDIA_S - 0.5
        assert (await channel(b))["floor"]["state"] == "idle"
        await c.keyboard.up("Space")

        # the case timeline lists the bursts (A three times, the commander); each recording plays back
        async def bursts() -> list[dict[str, Any]] | None:
            status, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
            found = [e for e in case["timeline"] if e["action"] == "ptt_burst"]
            return found if len(found) >= 4 else None

        entries = await poll(bursts, 10, "four bursts in the case timeline")
        assert [e["actor"]["username"] for e in entries] == ["field1", "field1", "field1", "commander"]
        assert [e["data"]["end_reason"] for e in entries] == ["released", "released", "preempted", "max_talk"]
        for entry in entries:
            data = entry["data"]
            status, audio = await hub.call("GET", data["url"], "duty")
            assert status == 200
            with av.open(io.BytesIO(audio)) as container:
                stream = container.streams.audio[0]
                seconds = sum(f.samples for f in container.decode(stream)) / 48_000
            assert abs(seconds - (data["ended_at"] - data["started_at"])) < 0.6, (seconds, data)
        assert entries[3]["data"]["duration_s"] > MAX_TALK_S  # the commander was heard through the grace

        # the console's case board shows them in the timeline, each with a player
        await cmd.click("[data-testid=tab-cases]")
        await cmd.locator(f"[data-testid=case-item][data-case-id='{case_id}'] button").click()
        shown = cmd.locator("[data-testid=timeline-entry][data-action=ptt_burst]")
        await poll(lambda: shown.count(), 10, "bursts in the console timeline")
        assert await shown.count() == 4
        await shown.first.locator("[data-testid=burst-play]").click()
        player = cmd.locator("[data-testid=burst-audio]")
        await player.wait_for(timeout=5_000)
        await poll(lambda: player.evaluate("el => el.duration > 0 && !el.error"), 10, "the recording to load in Chromium")
        for page in (a, b, c, cmd):
            await page.close()
