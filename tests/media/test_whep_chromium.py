"""Real headless Chromium plays the gateway's passthrough H.264 over WHEP on 127.0.0.1.

This is the proof that packets relayed as the camera sent them (libx264 High profile without
B-frames here, answered as H.264 constrained baseline packetization-mode 1, the only H.264
aiortc negotiates) are decoded by a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import MediaError
from fusionhub.media.gateway import MediaGateway
from tests.support.browser import chromium
from tests.support.rtsp import RtspServer

from .rtc_helpers import make_h264_clip

pytestmark = pytest.mark.slow

CAMERA_ID = 7

PAGE = """<!doctype html><html><body><video id="v" autoplay muted playsinline></video><script>
window.watch = async (url) => {
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.ontrack = (e) => { document.getElementById('v').srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
  const posted = performance.now();
  const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: pc.localDescription.sdp});
  if (r.status !== 201) throw new Error('WHEP answered ' + r.status + ': ' + await r.text());
  const location = r.headers.get('Location');
  await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  for (;;) {  // first decoded frame, timed from the POST
    const s = await window.videoStats();
    if (s && s.framesDecoded > 0) return {location, firstFrameMs: performance.now() - posted};
    if (performance.now() - posted > 20000) throw new Error('no frame decoded in 20 s');
    await new Promise((done) => setTimeout(done, 10));
  }
};
window.videoStats = async () => {
  const stats = await window.pc.getStats();
  for (const s of stats.values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      const codec = s.codecId ? stats.get(s.codecId) : null;
      const v = document.getElementById('v');
      return {framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
              codec: codec ? codec.mimeType + ' ' + (codec.sdpFmtpLine || '') : null,
              videoWidth: v.videoWidth, videoHeight: v.videoHeight, playing: !v.paused && v.readyState >= 2};
    }
  }
  return null;
};
</script></body></html>"""


@pytest.fixture(params=["file", "rtsp", "rtsp-sdp-only"])
async def whep_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, MediaGateway, str]]:
    """A tiny WHEP endpoint on 127.0.0.1 backed by a real MediaGateway whose camera is a looping
    file or a real RTSP camera (GStreamer test server) serving the same clip, with SPS/PPS in
    band or (rtsp-sdp-only) only in the SDP's sprop-parameter-sets, as many cameras send them."""
    clip = make_h264_clip(tmp_path / "cam.mp4", width=640, height=360, seconds=8, profile="high")
    gateway = MediaGateway(
        MediaConfig(ice_host_addresses=["127.0.0.1"]), on_sample=lambda *_: None, on_status=lambda _: None
    )

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def offer(request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return web.Response(status=415)
        try:
            answer, sid = await gateway.whep_offer(int(request.match_info["id"]), await request.text())
        except MediaError as exc:
            return web.Response(status=406, text=str(exc))
        return web.Response(
            status=201, body=answer.encode(), content_type="application/sdp", headers={"Location": f"/whep/sessions/{sid}"}
        )

    async def delete(request: web.Request) -> web.Response:
        await gateway.whep_delete(request.match_info["sid"])
        return web.Response(status=200)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/whep/cameras/{id}", offer)
    app.router.add_delete("/whep/sessions/{sid}", delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    async with contextlib.AsyncExitStack() as stack:
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        stack.push_async_callback(runner.cleanup)
        await site.start()
        if request.param.startswith("rtsp"):
            sdp_only = request.param == "rtsp-sdp-only"
            camera = await stack.enter_async_context(RtspServer(clip, params_in_sdp_only=sdp_only))
            await gateway.add_camera(CAMERA_ID, camera.url)
        else:
            await gateway.add_file_camera(CAMERA_ID, clip)
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}", gateway, request.param


async def test_chromium_decodes_passthrough_h264(whep_server: tuple[str, MediaGateway, str]) -> None:
    base, gateway, kind = whep_server
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(base + "/")
        result: dict[str, Any] = await page.evaluate(f"window.watch('/whep/cameras/{CAMERA_ID}')")
        print(f"Chromium ({kind} camera): first decoded frame {result['firstFrameMs']:.0f} ms after the WHEP POST")
        assert gateway.stats()["viewers"] == 1
        await asyncio.sleep(1.5)
        stats: dict[str, Any] = await page.evaluate("window.videoStats()")
        assert stats["framesDecoded"] > 20, stats  # it keeps decoding, not one lucky keyframe
        assert (stats["frameWidth"], stats["frameHeight"]) == (640, 360)
        assert (stats["videoWidth"], stats["videoHeight"]) == (640, 360) and stats["playing"]
        assert stats["codec"].startswith("video/H264") and "packetization-mode=1" in stats["codec"]
        sid = result["location"].rsplit("/", 1)[1]
        deleted = await page.evaluate(f"fetch('{result['location']}', {{method: 'DELETE'}}).then((r) => r.status)")
        assert deleted == 200
        assert sid not in gateway.session_ids() and gateway.stats()["viewers"] == 0
