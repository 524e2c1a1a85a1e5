"""A real SIP video terminal (baresip: H.264 + Opus) is dialled by the hub and watched in
Chromium through the hub over WHEP, its RTP relayed without transcoding."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fusionhub.console.api_terminals import SIP_AGENT
from fusionhub.console.keys import MEDIA
from fusionhub.media.sip import SipSession
from fusionhub.media.sipagent import MEDIA_CONTROL, PICTURE_FAST_UPDATE
from tests.console.hubrunner import RunningHub, hub_config, running_hub
from tests.e2e.test_whip_chromium import STATS
from tests.support import baresip
from tests.support.browser import chromium

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not baresip.available(), reason="baresip-core/baresip-ffmpeg not installed")]

WATCH = """async ([token, path]) => {
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const media = new MediaStream();
  pc.ontrack = (e) => {
    media.addTrack(e.track);
    const v = document.getElementById('watch') || document.body.appendChild(Object.assign(document.createElement('video'), {id: 'watch', autoplay: true}));
    v.srcObject = media;
    v.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
  const r = await fetch(path, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
  if (r.status !== 201) throw new Error('WHEP answered ' + r.status + ': ' + await r.text());
  await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  return r.headers.get('Location');
}"""


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    config = hub_config(tmp_path / "var", model_data_dir, media={"whip": {"keyframe_interval_s": 1.0}})
    async with running_hub(config) as running:
        for name in ("commander", "duty", "outsider"):
            await running.login(name)
        yield running


@pytest.mark.parametrize("audio", ["opus", "pcmu", "g722"])
async def test_a_baresip_terminal_reaches_a_chromium_viewer_through_the_hub(hub: RunningHub, audio: str) -> None:
    async with baresip.baresip_terminal(audio) as uri:
        status, term = await hub.call("POST", "/api/v1/terminals", "commander", json={"name": "room-1", "sip_uri": uri, "region": "city"})
        assert status == 201 and term["state"] == "idle", term
        # bad input changes nothing; outsiders see nothing
        for body in ({"name": "room-1", "sip_uri": uri, "region": "city"}, {"name": "x", "sip_uri": "sip:a@example.com", "region": "city"},
                     {"name": "y", "sip_uri": uri, "region": "elsewhere"}):
            got, _ = await hub.call("POST", "/api/v1/terminals", "commander", json=body)
            assert got in (409, 422), body
        got, _ = await hub.call("GET", f"/api/v1/terminals/{term['id']}", "outsider")
        assert got == 404
        got, reply = await hub.call("POST", f"/whep/terminals/{term['id']}", "duty", data="v=0\r\nm=video 9 x\r\n",
                                    headers={"Content-Type": "application/sdp"})
        assert got == 409 and reply["error"]["code"] == "not_connected"

        status, dialled = await hub.call("POST", f"/api/v1/terminals/{term['id']}/dial", "commander")
        assert status == 200 and dialled["state"] in ("connecting", "online"), dialled
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(hub.url + "/static/index.html")
            await page.evaluate(WATCH, [hub.tokens["duty"], f"/whep/terminals/{term['id']}"])
            stats: dict[str, Any] = {}
            async with asyncio.timeout(30):
                while not (stats.get("framesDecoded", 0) > 10 and stats.get("audioEnergy", 0) > 0):
                    await asyncio.sleep(0.25)
                    stats = await page.evaluate(STATS)
            assert stats["videoCodec"] == "video/H264", stats
        pub = hub.app[MEDIA].stats()["publishers"][f"terminal-{term['id']}"]
        assert pub["audio"]["codec"] == audio, pub
        if audio == "opus":  # relayed as received; G.711 goes the way of camera G.711 (see media/whepaudio.py)
            assert stats["audioCodec"] == "audio/opus" and pub["opus"] is None, (stats, pub)
        elif audio == "pcmu":  # Chromium takes G.711 as the terminal sent it
            assert stats["audioCodec"] == "audio/PCMU" and pub["opus"] is None, (stats, pub)
        else:  # no browser codec in aiortc for G.722: the terminal's one shared Opus transcoder
            assert stats["audioCodec"] == "audio/opus" and pub["opus"]["starts"] == 1, (stats, pub)
            assert pub["opus"]["packets_out"] > 0 and pub["opus"]["errors"] == 0, pub
        # the hub's keyframe requests (RTCP PLI, every second here) reach the terminal, which answers with
        # IDR pictures (left alone, baresip sent only its first keyframe in 4 s when this was written)
        async with asyncio.timeout(10):
            while hub.app[MEDIA].stats()["publishers"][f"terminal-{term['id']}"]["keyframes"] < 3:
                await asyncio.sleep(0.2)
        _, listed = await hub.call("GET", "/api/v1/terminals", "duty")
        assert [t["state"] for t in listed] == ["online"]
        status, hung = await hub.call("POST", f"/api/v1/terminals/{term['id']}/hangup", "commander")
        assert status == 200
        async with asyncio.timeout(10):
            while True:
                _, one = await hub.call("GET", f"/api/v1/terminals/{term['id']}", "duty")
                if one["state"] == "idle":
                    break
                await asyncio.sleep(0.2)


async def test_a_registered_terminal_calling_the_hub_is_accepted_and_relayed(hub: RunningHub) -> None:
    port = baresip.free_udp_port()
    status, term = await hub.call(
        "POST", "/api/v1/terminals", "commander", json={"name": "caller", "sip_uri": f"sip:terminal@127.0.0.1:{port}", "region": "city"}
    )
    assert status == 201, term
    status, agent = await hub.call("GET", "/api/v1/sip", "duty")
    assert status == 200 and agent["sip_uri"].startswith("sip:fusionhub@127.0.0.1:"), agent
    # a terminal the hub does not know is refused: no publisher appears
    async with baresip.baresip_terminal("pcmu", dial=agent["sip_uri"]):
        await asyncio.sleep(3)
        assert not hub.app[MEDIA].publishers.list()
    async with baresip.baresip_terminal("pcmu", port=port, dial=agent["sip_uri"]):
        async with asyncio.timeout(15):
            while True:
                _, one = await hub.call("GET", f"/api/v1/terminals/{term['id']}", "duty")
                pub = hub.app[MEDIA].stats()["publishers"].get(f"terminal-{term['id']}")
                if one["state"] == "online" and pub and pub["keyframes"] >= 1 and pub["audio_packets"] > 10:
                    break
                await asyncio.sleep(0.2)
        assert one["has_audio"] is True and pub["audio"]["codec"] == "pcmu", (one, pub)
    # the terminal hung up (baresip stopped): the hub notices and the terminal is idle again
    async with asyncio.timeout(15):
        while True:
            _, one = await hub.call("GET", f"/api/v1/terminals/{term['id']}", "duty")
            if one["state"] == "idle":
                break
            await asyncio.sleep(0.2)


def _info(session: SipSession, hub_port: int, local_port: int, body: str, cseq: int, *, call_id: str | None = None,
          content_type: str = MEDIA_CONTROL) -> bytes:
    """An in-dialog SIP INFO as the terminal would send it to the hub (the dialog's own ids)."""
    dialog = session._call.dialog
    lines = [
        f"INFO sip:fusionhub@127.0.0.1:{hub_port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-{secrets.token_hex(6)};rport",
        f"From: <{dialog.remote_uri}>;tag={dialog.remote_tag}",
        f"To: <{dialog.local_uri}>;tag={dialog.local_tag}",
        f"Call-ID: {call_id or dialog.call_id}",
        f"CSeq: {cseq} INFO",  # above the terminal's own: in-dialog CSeqs only go up
        "Max-Forwards: 70",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body.encode())}",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


async def test_keyframe_requests_by_sip_info_both_ways(tmp_path: Path, model_data_dir: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Terminals that ignore RTCP feedback ask for (and answer) keyframes by SIP INFO (RFC 5168)."""
    caplog.set_level(logging.DEBUG, logger="aiosipua")
    config = hub_config(tmp_path / "var", model_data_dir, media={"whip": {"keyframe_interval_s": 60.0}})
    async with running_hub(config) as hub, baresip.baresip_terminal("pcmu") as uri:
        await hub.login("commander")
        status, term = await hub.call("POST", "/api/v1/terminals", "commander", json={"name": "room-2", "sip_uri": uri, "region": "city"})
        assert status == 201, term
        status, _ = await hub.call("POST", f"/api/v1/terminals/{term['id']}/dial", "commander")
        assert status == 200
        pubs = hub.app[MEDIA].publishers
        async with asyncio.timeout(15):
            while not (pubs.list() and pubs.get(f"terminal-{term['id']}").session.connection_state == "connected"):
                await asyncio.sleep(0.1)
        session = pubs.get(f"terminal-{term['id']}").session
        assert isinstance(session, SipSession)
        # hub -> terminal: an INFO the terminal accepts (its 200 comes back in the same dialog)
        assert hub.app[SIP_AGENT].send_keyframe_request(session._call)
        async with asyncio.timeout(5):
            while not any(r.getMessage().startswith("200 for INFO") for r in caplog.records):
                await asyncio.sleep(0.05)
        # terminal -> hub: a picture_fast_update is answered 200 and counted (it replays what the
        # hub sends the terminal); another body 415; a call the hub does not have 481
        hub_port = hub.app[SIP_AGENT].address[1]
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        class _Peer(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                replies.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            before = session.remote_keyframe_requests
            for message, status_line in (
                (_info(session, hub_port, port, PICTURE_FAST_UPDATE, 1000), b"SIP/2.0 200"),
                (_info(session, hub_port, port, "Signal=1\r\nDuration=160\r\n", 1001, content_type="application/dtmf-relay"), b"SIP/2.0 415"),
                (_info(session, hub_port, port, PICTURE_FAST_UPDATE, 1002, call_id="not-a-call@127.0.0.1"), b"SIP/2.0 481"),
            ):
                transport.sendto(message, ("127.0.0.1", hub_port))
                async with asyncio.timeout(5):
                    reply = await replies.get()
                assert reply.startswith(status_line), reply[:200]
            assert session.remote_keyframe_requests == before + 1
        finally:
            transport.close()
