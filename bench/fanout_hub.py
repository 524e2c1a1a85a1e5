"""The hub side of the fan-out benchmark, in its own process so its CPU time is its own.

    python -m bench.fanout_hub --mode passthrough --camera rtsp://127.0.0.1:8554/cam

passthrough: FusionHub's MediaGateway (one ingest, packets relayed as received).
transcode:   aiortc's stock path: MediaPlayer decodes the camera, MediaRelay fans the frames
             out, and each viewer's RTCRtpSender encodes them again with libx264.
Serves POST /whep/cameras/1 and DELETE /whep/sessions/{id} on 127.0.0.1 (no login: a bench),
GET /stats, and prints "READY <port>" once listening. Ends on SIGTERM/SIGINT or stdin EOF.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import signal
import sys
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRelay

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported, GatewayFull, MediaError, UnknownSession
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.ice import pin_host_addresses
from fusionhub.media.whep import h264_preferences

CAMERA_ID = 1


class PassthroughHub:
    """MediaGateway behind WHEP routes."""

    def __init__(self, camera_url: str, config: MediaConfig) -> None:
        self.gateway = MediaGateway(config, on_sample=lambda *_: None, on_status=lambda _: None)
        self._url = camera_url

    async def start(self) -> None:
        await self.gateway.start()
        await self.gateway.add_camera(CAMERA_ID, self._url)

    async def offer(self, sdp: str) -> tuple[str, str]:
        return await self.gateway.whep_offer(CAMERA_ID, sdp)

    async def delete(self, session_id: str) -> None:
        await self.gateway.whep_delete(session_id)

    def stats(self) -> dict[str, Any]:
        s = self.gateway.stats()
        return {
            "viewers": s["viewers"],
            "transcodes": s["transcodes"],
            "admission": s["admission"],
            "loop_lag_ms": s["loop_lag_ms"],
            "camera": s["cameras"].get(CAMERA_ID),
        }

    async def stop(self) -> None:
        await self.gateway.stop()


class TranscodeHub:
    """aiortc's stock decode + per-viewer encode path (the baseline the gateway is compared with)."""

    def __init__(self, camera_url: str) -> None:
        self._url = camera_url
        self._player: MediaPlayer | None = None
        self._relay = MediaRelay()
        self._pcs: dict[str, RTCPeerConnection] = {}

    async def start(self) -> None:
        pin_host_addresses(["127.0.0.1"])
        self._player = MediaPlayer(
            self._url, format="rtsp", options={"rtsp_transport": "tcp", "analyzeduration": "200000"}, decode=True
        )

    async def offer(self, sdp: str) -> tuple[str, str]:
        assert self._player is not None and self._player.video is not None
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sid = secrets.token_urlsafe(8)
        self._pcs[sid] = pc
        transceiver = pc.addTransceiver(self._relay.subscribe(self._player.video), direction="sendonly")
        transceiver.setCodecPreferences(h264_preferences())
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                with contextlib.suppress(UnknownSession):
                    await self.delete(sid)

        return pc.localDescription.sdp, sid

    async def delete(self, session_id: str) -> None:
        pc = self._pcs.pop(session_id, None)
        if pc is None:
            raise UnknownSession(session_id)
        await pc.close()

    def stats(self) -> dict[str, Any]:
        return {"viewers": len(self._pcs)}

    async def stop(self) -> None:
        for sid in list(self._pcs):
            with contextlib.suppress(UnknownSession):
                await self.delete(sid)
        if self._player is not None and self._player.video is not None:
            self._player.video.stop()
        pin_host_addresses(None)


async def serve(hub: PassthroughHub | TranscodeHub) -> None:
    async def offer(request: web.Request) -> web.Response:
        try:
            answer, sid = await hub.offer(await request.text())
        except GatewayFull as exc:
            retry = getattr(exc, "retry_after_s", 2)
            return web.json_response({"error": str(exc)}, status=503, headers={"Retry-After": str(retry)})
        except CodecUnsupported as exc:
            return web.json_response({"error": str(exc)}, status=406)
        except (MediaError, TimeoutError) as exc:  # reported to the client, counted as a failure
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)
        return web.Response(
            status=201, body=answer.encode(), content_type="application/sdp", headers={"Location": f"/whep/sessions/{sid}"}
        )

    async def delete(request: web.Request) -> web.Response:
        try:
            await hub.delete(request.match_info["sid"])
        except UnknownSession:
            return web.Response(status=404)
        return web.Response(status=200)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(hub.stats())

    app = web.Application()
    app.router.add_post(f"/whep/cameras/{CAMERA_ID}", offer)
    app.router.add_delete("/whep/sessions/{sid}", delete)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await hub.start()
    await site.start()
    print(f"READY {runner.addresses[0][1]}", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    # stdin EOF (the orchestrator went away) also ends the hub
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.create_task(reader.read())
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait([eof, waiter], return_when=asyncio.FIRST_COMPLETED)
    for task in (eof, waiter):
        task.cancel()
    try:
        await hub.stop()
    finally:
        await runner.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["passthrough", "transcode"], required=True)
    ap.add_argument("--camera", required=True, help="rtsp:// URL of the camera")
    ap.add_argument("--config", default="{}", help="MediaConfig fields as JSON (passthrough)")
    ap.add_argument("--profile", help="write a cProfile of the whole run to this file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="hub %(levelname)s %(name)s: %(message)s")
    if args.mode == "passthrough":
        fields: dict[str, Any] = {"ice_host_addresses": ["127.0.0.1"], "max_viewers": 1000}
        fields.update(json.loads(args.config))
        hub: PassthroughHub | TranscodeHub = PassthroughHub(args.camera, MediaConfig(**fields))
    else:
        hub = TranscodeHub(args.camera)
    if args.profile:
        import cProfile

        with cProfile.Profile() as prof:
            asyncio.run(serve(hub))
        prof.dump_stats(args.profile)
    else:
        asyncio.run(serve(hub))


if __name__ == "__main__":
    main()
