"""WHEP viewers for the fan-out benchmark, several per process, on 127.0.0.1 only.

    python -m bench.fanout_client --url http://127.0.0.1:PORT/whep/cameras/1 --viewers 10

Each viewer is a real aiortc peer connection (ICE, DTLS, SRTP). By default a viewer does not
decode: it counts what a decoder would be handed, from the RTP headers after SRTP decryption
(frames = marker bits, keyframes from the H.264 payload headers, sequence gaps = losses), so
that many viewers fit beside the hub on a small machine. `--decode` uses aiortc's full
receiver (jitter buffer and H.264 decoder) and counts decoded frames: the late-joiner check.

Prints one JSON line when its viewers are connected, then answers stdin commands:
`report T0 T1` (time.monotonic(), shared by processes on Linux) → per-viewer figures for frames
that arrived in [T0, T1]; `quit` or EOF → close everything and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from typing import Any

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from fusionhub.media.ice import pin_host_addresses

MAX_FRAMES_KEPT = 4000  # arrival times kept per viewer (~160 s at 25 fps)
CONNECT_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 20  # WHEP POSTs per viewer (503 + Retry-After answers are retried)


def _h264_keyframe_start(payload: bytes) -> bool:
    """True when an H.264 RTP payload starts an IDR picture or carries SPS (STAP-A or FU-A)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal == 24:  # STAP-A: first aggregated NAL after the 2-byte size
        return len(payload) > 3 and (payload[3] & 0x1F) in (5, 7)
    if nal == 28:  # FU-A: start bit and type in the FU header
        return len(payload) > 1 and bool(payload[1] & 0x80) and (payload[1] & 0x1F) in (5, 7)
    return nal in (5, 7)


class Viewer:
    """One WHEP viewer; see the module docstring for what it counts."""

    def __init__(self, index: int, url: str, *, decode: bool) -> None:
        self.index = index
        self.url = url
        self.decode = decode
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.session: str | None = None
        self.error: str | None = None
        self.refusals = 0
        self.posted_at: float | None = None
        self.connected_at: float | None = None
        self.first_frame_at: float | None = None
        # one entry per frame: (arrival time, RTP packets, packets lost since the previous frame)
        self.frames: deque[tuple[float, int, int]] = deque(maxlen=MAX_FRAMES_KEPT)
        self.packets = 0
        self.lost = 0
        self._frame_packets = 0
        self._frame_lost = 0
        self.keyframes = 0
        self._seen_key = False
        self._last_seq: int | None = None
        self._last_ts: int | None = None
        self._pt: int | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, http: aiohttp.ClientSession) -> None:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])
        if self.decode:
            self.pc.on("track", self._on_track)
        else:
            # count at the SRTP layer: the receiver (jitter buffer, decoder thread) never sees a packet
            transceiver.receiver.transport._handle_rtp_data = self._on_rtp  # type: ignore[method-assign]
        connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.connected_at = time.monotonic()
                connected.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            for _ in range(MAX_ATTEMPTS):
                self.posted_at = time.monotonic()
                async with http.post(self.url, data=offer, headers={"Content-Type": "application/sdp"}) as r:
                    if r.status == 503:
                        self.refusals += 1
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    body = await r.text()
                    if r.status != 201:
                        raise RuntimeError(f"WHEP answered {r.status}: {body[:200]}")
                    self.session = r.headers.get("Location")
                    break
            else:
                raise RuntimeError(f"refused {self.refusals} times")
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
            await connected.wait()

    async def _on_rtp(self, data: bytes, arrival_time_ms: int = 0) -> None:
        if len(data) < 12:
            return
        now = time.monotonic()
        pt = data[1] & 0x7F
        if self._pt is None:
            self._pt = pt
        elif pt != self._pt:
            return  # RTX or another payload type: not part of the stream's frames
        self.packets += 1
        seq = int.from_bytes(data[2:4], "big")
        if self._last_seq is not None:
            gap = (seq - self._last_seq) & 0xFFFF
            if 1 < gap < 0x8000:
                self.lost += gap - 1
                self._frame_lost += gap - 1
        self._last_seq = seq
        offset = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= offset + 4:  # header extension
            offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
        ts = int.from_bytes(data[4:8], "big")
        if ts != self._last_ts and _h264_keyframe_start(data[offset:]):
            self._seen_key = True
            self.keyframes += 1
        self._last_ts = ts
        self._frame_packets += 1
        if data[1] & 0x80:  # marker: the last packet of a frame
            if self._seen_key:
                self.frames.append((now, self._frame_packets, self._frame_lost))
                if self.first_frame_at is None:
                    self.first_frame_at = now
            self._frame_packets = self._frame_lost = 0

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    now = time.monotonic()
                    self.frames.append((now, 0, 0))
                    if self.first_frame_at is None:
                        self.first_frame_at = now

    def report(self, t0: float, t1: float) -> dict[str, Any]:
        window = [f for f in self.frames if t0 <= f[0] <= t1]
        times = [f[0] for f in window]
        gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
        p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] if gaps else None
        return {
            "index": self.index,
            "frames": len(times),
            "fps": len(times) / (t1 - t0) if t1 > t0 else 0.0,
            "p99_interval_ms": None if p99 is None else round(p99 * 1000, 1),
            "max_interval_ms": round(gaps[-1] * 1000, 1) if gaps else None,
            "packets": sum(f[1] for f in window),
            "lost": sum(f[2] for f in window),
            "incomplete_frames": sum(1 for f in window if f[2]),
            "connected": self.pc.connectionState == "connected",
        }

    def summary(self) -> dict[str, Any]:
        def since_post(t: float | None) -> float | None:
            return None if t is None or self.posted_at is None else round(t - self.posted_at, 4)

        return {
            "index": self.index,
            "ok": self.error is None and self.connected_at is not None,
            "error": self.error,
            "refusals": self.refusals,
            "connect_s": since_post(self.connected_at),
            "first_frame_s": since_post(self.first_frame_at),
        }

    async def close(self, http: aiohttp.ClientSession) -> None:
        if self.session:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with asyncio.timeout(5):
                    async with http.delete(self.url.split("/whep/")[0] + self.session):
                        pass
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def run(args: argparse.Namespace) -> None:
    pin_host_addresses(["127.0.0.1"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    viewers = [Viewer(args.first_index + i, args.url, decode=args.decode) for i in range(args.viewers)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S)) as http:

        async def connect(v: Viewer) -> None:
            try:
                await v.connect(http)
            except Exception as exc:  # reported, never raised: one failed viewer is a figure
                v.error = f"{type(exc).__name__}: {exc}"[:300]

        await asyncio.gather(*(connect(v) for v in viewers))
        if args.wait_first_frame:
            async with asyncio.timeout(args.wait_first_frame):
                while any(v.first_frame_at is None for v in viewers if v.error is None):
                    await asyncio.sleep(0.01)
        print(json.dumps({"event": "connected", "viewers": [v.summary() for v in viewers]}), flush=True)
        try:
            while True:
                line = (await reader.readline()).decode().split()
                if not line or line[0] == "quit":
                    break
                if line[0] == "report":
                    t0, t1 = float(line[1]), float(line[2])
                    out = {"event": "report", "viewers": [v.report(t0, t1) for v in viewers]}
                    print(json.dumps(out), flush=True)
        finally:
            await asyncio.gather(*(v.close(http) for v in viewers))
    pin_host_addresses(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="WHEP endpoint, http://127.0.0.1:PORT/whep/cameras/ID")
    ap.add_argument("--viewers", type=int, default=1)
    ap.add_argument("--first-index", type=int, default=0)
    ap.add_argument("--decode", action="store_true", help="decode with aiortc instead of counting RTP")
    ap.add_argument("--wait-first-frame", type=float, default=0.0, help="wait up to S s for every first frame")
    args = ap.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        ap.error("viewers connect to 127.0.0.1 only")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
