"""A field phone (headless Chromium, fake camera + mic) goes live from the field page over WHIP;
a second Chromium page watches it over WHEP with its sound, through the real hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fusionhub.console.keys import MEDIA
from tests.console.hubrunner import PASSWORDS, RunningHub, hub_config, running_hub
from tests.support.browser import chromium

pytestmark = pytest.mark.slow

WATCH = """async ([token, name]) => {
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const media = new MediaStream();
  pc.ontrack = (e) => {
    media.addTrack(e.track);
    const v = document.getElementById('watch') || document.body.appendChild(Object.assign(document.createElement('video'), {id: 'watch', autoplay: true, playsInline: true}));
    v.srcObject = media;
    v.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
  const r = await fetch('/whep/publishers/' + name, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
  if (r.status !== 201) throw new Error('WHEP answered ' + r.status + ': ' + await r.text());
  const answer = await r.text();
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  return {location: r.headers.get('Location'), answer};
}"""

STATS = """async () => {
  const out = {framesDecoded: 0, audioEnergy: 0, audioSamples: 0, videoCodec: null, audioCodec: null};
  const stats = await window.pc.getStats();
  for (const s of stats.values()) {
    if (s.type !== 'inbound-rtp') continue;
    const codec = s.codecId ? stats.get(s.codecId) : null;
    if (s.kind === 'video') { out.framesDecoded = s.framesDecoded || 0; out.videoCodec = codec && codec.mimeType; }
    if (s.kind === 'audio') { out.audioEnergy = s.totalAudioEnergy || 0; out.audioSamples = s.totalSamplesReceived || 0;
                              out.audioCodec = codec && codec.mimeType; }
  }
  return out;
}"""


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    config = hub_config(tmp_path / "var", model_data_dir, media={"whip": {"keyframe_interval_s": 1.0}})
    async with running_hub(config) as running:
        for name in ("duty", "commander"):
            await running.login(name)
        yield running


async def _publisher_online(hub: RunningHub, name: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            status, pubs = await hub.call("GET", "/api/v1/publishers", "commander")
            assert status == 200, pubs
            live = [p for p in pubs if p["name"] == name and p["state"] == "online"]
            if live:
                return live[0]
            await asyncio.sleep(0.2)


async def test_field_phone_goes_live_and_the_command_centre_watches_and_hears_it(hub: RunningHub) -> None:
    async with chromium() as browser:
        phone = await browser.new_page()
        await phone.goto(hub.url + "/field")
        await phone.fill("[data-testid=login-username]", "field1")
        await phone.fill("[data-testid=login-password]", PASSWORDS["field1"])
        await phone.click("[data-testid=login-submit]")
        await phone.click("[data-testid=live-start]")
        await phone.wait_for_selector("[data-testid=live-state][data-state=live]", timeout=20_000)
        pub = await _publisher_online(hub, "field1")
        assert pub["has_audio"] is True and pub["source_id"] < 0

        desk = await browser.new_page()
        await desk.goto(hub.url + "/")
        watched = await desk.evaluate(WATCH, [hub.tokens["duty"], "field1"])
        assert "H264" in watched["answer"] and "opus" in watched["answer"].lower()
        stats: dict[str, Any] = {}
        async with asyncio.timeout(20):
            while not (stats.get("framesDecoded", 0) > 10 and stats.get("audioEnergy", 0) > 0):
                await asyncio.sleep(0.25)
                stats = await desk.evaluate(STATS)
        assert stats["videoCodec"] == "video/H264" and stats["audioCodec"] == "audio/opus", stats
        media = hub.app[MEDIA].stats()
        assert media["publishers"]["field1"]["opus"] is None  # the phone's Opus was relayed, not transcoded
        assert [s["audio_codec"] for s in media["sessions"]] == ["opus"]  # the desk's viewing session
        # the console's "field live" tab shows the phone and plays it
        console = await browser.new_page()
        await console.goto(hub.url + "/")
        await console.fill("[data-testid=login-username]", "commander")
        await console.fill("[data-testid=login-password]", PASSWORDS["commander"])
        await console.click("[data-testid=login-submit]")
        await console.click("[data-testid=tab-live]")
        tile = console.locator("[data-testid=live-tile][data-name=field1]")
        await tile.locator("[data-testid=live-watch]").click()
        video = tile.locator("[data-testid=live-video]")
        async with asyncio.timeout(20):
            while not await video.evaluate("(v) => v.readyState >= 2 && v.videoWidth > 0 && !v.paused"):
                await asyncio.sleep(0.2)
        await tile.locator("[data-testid=live-unwatch]").click()
        # the desk ends its viewing; the phone stops publishing; the publisher goes away
        ended = await desk.evaluate(
            "([loc, token]) => fetch(loc, {method: 'DELETE', headers: {Authorization: 'Bearer ' + token}}).then((r) => r.status)",
            [watched["location"], hub.tokens["duty"]],
        )
        assert ended == 200
        await phone.click("[data-testid=live-stop]")
        await console.locator("[data-testid=live-empty]").wait_for(state="visible", timeout=10_000)  # pushed
        async with asyncio.timeout(10):
            while True:
                status, pubs = await hub.call("GET", "/api/v1/publishers", "commander")
                if status == 200 and not pubs:
                    break
                await asyncio.sleep(0.2)
