"""A commander calls a field member from a case: two Chromium pages (fake camera + mic) see and
hear each other through the hub; the commander's snapshot of the field video lands in the case;
the call's start and end are in the case timeline, and each side's recording is attached to it."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.async_api import Page

from fusionhub.console.keys import MEDIA, TERMINAL_BRIDGE
from fusionhub.media.sip import SipSession
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, running_hub
from tests.support import baresip
from tests.support.browser import chromium

pytestmark = pytest.mark.slow


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    config = hub_config(tmp_path / "var", model_data_dir, media={"whip": {"keyframe_interval_s": 1.0}})
    async with running_hub(config) as running:
        for name in ("duty", "commander", "field1"):
            await running.login(name)
        yield running


async def _login(page: Page, url: str, user: str) -> None:
    await page.goto(url)
    await page.fill("[data-testid=login-username]", user)
    await page.fill("[data-testid=login-password]", PASSWORDS[user])
    await page.click("[data-testid=login-submit]")


async def _media_flows(page: Page) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    async with asyncio.timeout(30):
        while not (stats.get("framesDecoded", 0) > 10 and stats.get("audioEnergy", 0) > 0):
            await asyncio.sleep(0.25)
            stats = await page.evaluate("() => window.fhCall ? window.fhCall.stats() : {}")
    return stats


async def _timeline(hub: RunningHub, case_id: int, action: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        while True:
            status, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
            assert status == 200, case
            found = [e for e in case["timeline"] if e["action"] == action]
            if found:
                return found
            await asyncio.sleep(0.2)


async def test_commander_calls_the_field_from_a_case_sees_hears_and_snapshots(hub: RunningHub) -> None:
    status, case = await hub.call(
        "POST", "/api/v1/cases", "duty",
        json={"source": "hotline", "category": "exposed_garbage", "location": "No. 5 Jiefang Road", "description": "bags"},
    )
    assert status == 201, case
    case_id = int(case["id"])
    field_id = int(hub.users["field1"]["id"])
    async with chromium() as browser:
        phone = await browser.new_page()
        await _login(phone, hub.url + "/field", "field1")
        await phone.wait_for_selector("[data-testid=field-live]")

        desk = await browser.new_page()
        await _login(desk, hub.url + "/", "commander")
        await desk.click("[data-testid=tab-cases]")
        await desk.click(f"[data-testid=case-item][data-case-id='{case_id}'] button")
        await desk.click("[data-testid=case-call]")
        await desk.select_option("[data-testid=call-callee]", f"user:{field_id}")
        await desk.click("[data-testid=call-place]")
        await desk.wait_for_selector("[data-testid=call-state][data-state=ringing]")

        # the phone rings over the websocket and answers
        await phone.wait_for_selector("[data-testid=call-ring]", timeout=10_000)
        await phone.click("[data-testid=call-answer]")
        await phone.wait_for_selector("[data-testid=call-state][data-state=active]")
        await desk.wait_for_selector("[data-testid=call-state][data-state=active]", timeout=10_000)

        # each side decodes the other's video and hears its audio, relayed without transcoding
        at_desk, at_phone = await asyncio.gather(_media_flows(desk), _media_flows(phone))
        for stats in (at_desk, at_phone):
            assert stats["videoCodec"] == "video/H264" and stats["audioCodec"] == "audio/opus", stats
        pubs = hub.app[MEDIA].stats()["publishers"]
        call_pubs = [name for name in pubs if name.startswith("call-")]
        assert len(call_pubs) == 2 and all(pubs[n]["opus"] is None for n in call_pubs), pubs

        # snapshot of the field video into the case
        await desk.click("[data-testid=call-snapshot]")
        snaps = await _timeline(hub, case_id, "call_snapshot")
        _, full = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
        shots = [a for a in full["attachments"] if a["kind"] == "snapshot"]
        assert len(shots) == 1 and shots[0]["content_type"] == "image/jpeg"
        assert snaps[0]["data"]["attachment_id"] == shots[0]["id"]
        async with hub.http.get(hub.url + shots[0]["url"], headers=hub.auth("commander")) as resp:
            assert resp.status == 200
            jpeg = await resp.read()
        assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) > 2000
        await desk.locator("[data-testid=case-attachment][data-kind=snapshot]").wait_for(timeout=10_000)

        if baresip.available():
            await _add_terminal_feed(hub, desk, phone)

        started = await _timeline(hub, case_id, "call_started")
        assert {p["user_id"] for p in started[0]["data"]["participants"]} == {field_id, int(hub.users["commander"]["id"])}

        # the commander hangs up: the phone's call ends, the publishers go, the timeline has the end
        await desk.click("[data-testid=call-hangup]")
        await phone.wait_for_selector("[data-testid=call-dock]", state="hidden", timeout=10_000)
        ended = await _timeline(hub, case_id, "call_ended")
        assert ended[0]["data"]["end_reason"] == "hangup" and ended[0]["data"]["duration_s"] > 0
        assert ended[0]["data"]["terminal_ids"] == ([1] if baresip.available() else [])
        async with asyncio.timeout(10):
            while any(n.startswith("call-") for n in hub.app[MEDIA].stats()["publishers"]):
                await asyncio.sleep(0.2)
        await _check_recordings(hub, case_id, ended[0]["data"]["duration_s"], {field_id, int(hub.users["commander"]["id"])})
        await desk.locator("[data-testid=case-attachment][data-kind=recording]").first.wait_for(timeout=10_000)


async def _check_recordings(hub: RunningHub, case_id: int, call_s: float, parties: set[int]) -> None:
    """Each party's side was recorded as relayed: two MP4 attachments (H.264 + Opus, no re-encode),
    as long as the call, each with the sha256 of what the attachment route serves."""
    async with asyncio.timeout(20):
        while len(entries := await _timeline(hub, case_id, "call_recording")) < 2:
            await asyncio.sleep(0.2)
    assert {e["data"]["user_id"] for e in entries} == parties
    _, full = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
    recordings = {a["id"]: a for a in full["attachments"] if a["kind"] == "recording"}
    assert len(recordings) == 2
    for entry in entries:
        att = recordings[entry["data"]["attachment_id"]]
        assert att["content_type"] == "video/mp4"
        async with hub.http.get(hub.url + att["url"], headers=hub.auth("commander")) as resp:
            assert resp.status == 200
            body = await resp.read()
        assert hashlib.sha256(body).hexdigest() == entry["data"]["sha256"]
        with av.open(io.BytesIO(body), mode="r") as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264" and audio.codec_context.name == "opus"
            assert container.duration is not None
            duration = container.duration / 1_000_000
            frames = sum(1 for _ in container.decode(video=0))
        with av.open(io.BytesIO(body), mode="r") as container:
            audio_packets = sum(1 for p in container.demux(audio=0) if p.size)
        # from the answer (or the keyframe just before) to the hang-up
        assert call_s - 2 <= duration <= call_s + 1.5, (duration, call_s)
        assert entry["data"]["has_audio"] and not entry["data"]["truncated"]
        assert frames > 10 * call_s * 0.5, frames
        assert audio_packets > 25 * call_s, audio_packets  # 20 ms Opus packets, all along


async def _add_terminal_feed(hub: RunningHub, desk: Page, phone: Page) -> None:
    """The commander pulls a conference terminal (baresip over SIP, G.711 only) into the call: both
    people see and hear the room, and the room hears both of them, mixed once into its G.711."""
    async with baresip.baresip_terminal("pcmu") as uri:
        status, term = await hub.call("POST", "/api/v1/terminals", "commander", json={"name": "hall", "sip_uri": uri, "region": "city"})
        assert status == 201, term
        # added before it is dialled: the dock says it is not connected yet and keeps trying
        await desk.select_option("[data-testid=call-feed-kind]", "terminal")
        await desk.fill("[data-testid=call-feed-id]", str(term["id"]))
        await desk.click("[data-testid=call-add-feed]")
        error = desk.locator("[data-testid=call-error]")
        async with asyncio.timeout(10):
            while not ("dial it first" in (shown := await error.inner_text()) or "终端未接通" in shown):
                await asyncio.sleep(0.2)
        assert await desk.locator(f"[data-testid=call-feed][data-feed-id='{term['id']}']").count() == 1, shown
        status, dialled = await hub.call("POST", f"/api/v1/terminals/{term['id']}/dial", "commander")
        assert status == 200, dialled
        feed = {"kind": "terminal", "id": term["id"]}
        for page in (desk, phone):  # the field member is shown the room too, and hears it
            video = page.locator(f"[data-testid=call-feed][data-kind=terminal][data-feed-id='{term['id']}'] video")
            try:
                async with asyncio.timeout(20):
                    while not await video.evaluate("(v) => v.readyState >= 2 && v.videoWidth > 0"):
                        await asyncio.sleep(0.2)
            except TimeoutError:
                dock = await page.locator("[data-testid=call-dock]").inner_text()
                raise AssertionError(f"{page.url}: no terminal picture; the call dock shows {dock!r}; "
                                     f"publishers: {hub.app[MEDIA].stats()['publishers']}") from None
            async with asyncio.timeout(20):
                while (await page.evaluate("(f) => window.fhCall.stats(f)", feed))["audioEnergy"] <= 0:
                    await asyncio.sleep(0.2)
        assert await error.inner_text() == ""  # the wait's message went with it
        # the other way: the terminal is shown the commander's camera (relayed H.264) and hears both
        # people, their Opus mixed into one PCMU stream by one encoder; its receiver reports say both arrive
        session = hub.app[MEDIA].publishers.get(f"terminal-{term['id']}").session
        assert isinstance(session, SipSession) and session.audio_format is not None
        assert session.audio_format.codec == "pcmu"
        async with asyncio.timeout(20):
            while not (session.sent_packets > 20 and session.remote_received_seq is not None
                       and session.sent_audio_packets > 20 and session.remote_received_audio_seq is not None):
                await asyncio.sleep(0.2)
        call_id = await desk.evaluate("window.fhCall.call.call_id")
        (mix,) = hub.app[TERMINAL_BRIDGE].mixes(call_id)
        stats = mix.stats()
        assert len(stats["inputs"]) == 2 and stats["encoders"] == 1 and stats["listeners"] == 1, stats
        assert stats["packets_out"] > 20 and stats["errors"] == 0, stats
        status, _ = await hub.call("POST", f"/api/v1/terminals/{term['id']}/hangup", "commander")
        assert status == 200
