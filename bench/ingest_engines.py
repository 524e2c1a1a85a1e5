"""What packet ingest costs per frame: the hub's thread-per-camera PyAV ingest against an event-loop reader.

    python -m bench.ingest_engines [--cameras 100,200] [--window-s 15]

A design measurement for issue 4's capacity goal, not a product path. On the capacity bench's
2-core box, "other" (mostly packet ingest) is the second cost after inference, and it grows
faster than the camera count: each camera's thread wakes for every packet and contends for the
GIL with every other camera's. This bench measures the two ways of reading the same cameras over
the same wire:

  threads     the hub's real ingest: MediaGateway + CameraIngest, one thread per camera, FFmpeg's
              RTSP client through PyAV (what every camera runs on today)
  event loop  a prototype reader: one asyncio protocol per camera on the event loop, RTSP over TCP
              with interleaved RTP, H.264 depacketised in Python (single NAL units, FU-A, STAP-A),
              access units into the same PacketRelay and PacketRing; keyframes decoded by the real
              KeyframeSampler in a pool of two threads

The cameras: one server process (bench/rtsp_loop.py) serving the capacity bench's clip (720p,
25 fps, keyframe every 2 s) to every client, each at its own phase, pre-packetised, over loopback.
Its CPU is not counted; a real camera's is not the hub's either.

Per set-up and camera count it prints frames delivered per second against the cameras' 25 fps,
and the hub process's CPU per frame without the keyframe decode and scaling (which both do
alike), with the ratio. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.capacity_clip import make_clip  # noqa: E402
from bench.rtsp_loop import FPS, serve  # noqa: E402
from fusionhub.media.annexb import IDR, START  # noqa: E402
from fusionhub.media.config import MediaConfig  # noqa: E402
from fusionhub.media.gateway import MediaGateway  # noqa: E402
from fusionhub.media.options import IngestOptions  # noqa: E402
from fusionhub.media.packets import EncodedPacket  # noqa: E402
from fusionhub.media.relay import PacketRelay  # noqa: E402
from fusionhub.media.ring import PacketRing  # noqa: E402
from fusionhub.media.sampler import KeyframeSampler  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
FU_A, STAP_A = 28, 24


def cpu_s() -> float:
    """user+system CPU seconds of this process (all its threads)."""
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopCamera(asyncio.Protocol):
    """The prototype: RTSP handshake (DESCRIBE, SETUP, PLAY), then interleaved RTP -> access units."""

    def __init__(self, camera_id: int, url: str, pool: ThreadPoolExecutor, counts: list[int]) -> None:
        self.url = url
        self.buf = bytearray()
        self.playing = False
        self.requests = [
            f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n",
            f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
            f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {{session}}\r\nRange: npt=0.000-\r\n\r\n",
        ]
        self.session = ""
        self.nals: list[bytes] = []
        self.fu: list[bytes] | None = None
        self.last_ts: int | None = None
        self.pts = 0
        self.relay = PacketRelay(f"cam{camera_id}", queue_packets=300)
        self.ring = PacketRing(seconds=30.0, max_bytes=32 << 20)
        self.sampler = KeyframeSampler(camera_id, options=IngestOptions(), on_sample=lambda _ts, _frame: None)
        self.decoding = False
        self.pool = pool
        self.counts = counts
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._next_request()

    def _next_request(self) -> None:
        assert self.transport is not None
        self.transport.write(self.requests.pop(0).format(session=self.session).encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.playing and not self._handshake():
            return
        pos, n = 0, len(buf)
        view = memoryview(buf)
        while n - pos >= 4 and buf[pos] == 0x24:
            size = (buf[pos + 2] << 8) | buf[pos + 3]
            if n - pos < 4 + size:
                break
            if buf[pos + 1] == 0:  # channel 0: RTP (1 would be RTCP)
                self._rtp(view[pos + 4 : pos + 4 + size])
            pos += 4 + size
        view.release()
        del buf[:pos]

    def _handshake(self) -> bool:
        """Read RTSP responses until PLAY was answered; True once RTP follows."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(self.buf[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "session":
                    self.session = value.strip().split(";")[0]
            if len(self.buf) < end + 4 + length:
                return False
            if not head.startswith("RTSP/1.0 200"):
                raise ConnectionError(head.splitlines()[0])
            del self.buf[: end + 4 + length]
            if not self.requests:
                self.playing = True
                return True
            self._next_request()

    def _rtp(self, packet: memoryview) -> None:
        first = packet[0]
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
        ts = int.from_bytes(packet[4:8], "big")
        payload = packet[offset:]
        kind = payload[0] & 0x1F
        if kind < 24:
            self.nals.append(bytes(payload))
        elif kind == FU_A:
            header = payload[1]
            if header & 0x80:
                self.fu = [bytes([(payload[0] & 0xE0) | (header & 0x1F)]), bytes(payload[2:])]
            elif self.fu is not None:
                self.fu.append(bytes(payload[2:]))
            if header & 0x40 and self.fu is not None:
                self.nals.append(b"".join(self.fu))
                self.fu = None
        elif kind == STAP_A:
            pos = 1
            while pos + 2 <= len(payload):
                size = int.from_bytes(payload[pos : pos + 2], "big")
                self.nals.append(bytes(payload[pos + 2 : pos + 2 + size]))
                pos += 2 + size
        if packet[1] & 0x80:  # marker: the access unit is complete
            self._access_unit(ts)

    def _access_unit(self, ts: int) -> None:
        nals, self.nals = self.nals, []
        if not nals:
            return
        if self.last_ts is not None:
            self.pts += (ts - self.last_ts) & 0xFFFFFFFF  # 32-bit RTP clock, unwrapped
        self.last_ts = ts
        key = any(nal[0] & 0x1F == IDR for nal in nals)
        packet = EncodedPacket(data=START + START.join(nals), pts=self.pts, is_keyframe=key)
        self.relay.on_packet(packet)
        self.ring.on_packet(packet)
        self.counts[0] += 1
        if key and not self.decoding:  # one decode per camera at a time, as a source thread does
            self.decoding = True
            future = self.pool.submit(self.sampler.offer, packet.data, packet.pts, True)
            future.add_done_callback(self._decoded)

    def _decoded(self, _future: Any) -> None:
        self.decoding = False


async def measure_threads(url: str, n: int, warmup_s: float, window_s: float) -> dict[str, float]:
    gateway = MediaGateway(
        MediaConfig.model_validate({"ingest": {"sample_max_side": 640}}),
        on_sample=lambda *_a: None, on_status=lambda _s: None,
    )
    await gateway.start()
    try:
        for i in range(1, n + 1):
            await gateway.add_camera(i, f"{url}?cam={i}")
            gateway.set_analytics_need(i, True)
            await asyncio.sleep(1.0 / n)

        def totals() -> tuple[int, float, int]:
            stats = gateway.ingest_stats().values()
            return sum(s.packets for s in stats), sum(s.decode_cpu_s + s.resize_cpu_s for s in stats), sum(s.samples for s in stats)

        return await _window(totals, warmup_s, window_s)
    finally:
        await gateway.stop()


async def measure_loop(url: str, n: int, warmup_s: float, window_s: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    counts = [0]
    cameras: list[LoopCamera] = []
    transports: list[asyncio.BaseTransport] = []
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    with ThreadPoolExecutor(2, thread_name_prefix="decode") as pool:
        try:
            for i in range(1, n + 1):
                cam = LoopCamera(i, f"{url}?cam={i}", pool, counts)
                opened, _ = await loop.create_connection(lambda cam=cam: cam, host, int(port))  # type: ignore[misc]
                cameras.append(cam)
                transports.append(opened)
                await asyncio.sleep(1.0 / n)

            def totals() -> tuple[int, float, int]:
                return (
                    counts[0],
                    sum(c.sampler.decode_cpu_s + c.sampler.resize_cpu_s for c in cameras),
                    sum(c.sampler.samples for c in cameras),
                )

            return await _window(totals, warmup_s, window_s)
        finally:
            for connection in transports:
                connection.close()


async def _window(totals: Any, warmup_s: float, window_s: float) -> dict[str, float]:
    await asyncio.sleep(warmup_s)
    (frames0, decode0, samples0), cpu0, t0 = totals(), cpu_s(), time.monotonic()
    await asyncio.sleep(window_s)
    (frames1, decode1, samples1), cpu1, wall = totals(), cpu_s(), time.monotonic() - t0
    frames = max(1, frames1 - frames0)
    decode = decode1 - decode0
    return {
        "frames_per_s": frames / wall,
        "cores": (cpu1 - cpu0) / wall,
        "decode_cores": decode / wall,
        "us_per_frame": (cpu1 - cpu0 - decode) / frames * 1e6,
        "samples_per_s": (samples1 - samples0) / wall,  # keyframes decoded into pictures: the stream is intact
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clip = make_clip(args.data_dir / "bench" / "capacity-720p25-gop2s.mp4")
    port = free_port()
    ready = mp.get_context("spawn").Event()
    server = mp.get_context("spawn").Process(target=serve, args=(clip, port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the RTSP server did not start")
        url = f"rtsp://127.0.0.1:{port}/clip"
        results: dict[int, dict[str, dict[str, float]]] = {}
        for n in args.cameras:
            results[n] = {}
            for name, measure in (("threads", measure_threads), ("event loop", measure_loop)):
                r = await measure(url, n, args.warmup_s, args.window_s)
                results[n][name] = r
                print(
                    f"  {name:10s} {n:4d} cams: {r['frames_per_s']:7.0f} frames/s of {FPS * n} sent; hub process "
                    f"{r['cores']:.2f} cores, of which keyframe decode+scale {r['decode_cores']:.2f} "
                    f"({r['samples_per_s']:.0f} samples/s of {n // 2} keyframes/s); "
                    f"{r['us_per_frame']:.0f} µs per frame besides",
                    flush=True,
                )
                await asyncio.sleep(2.0)  # the server drops the closed connections
    finally:
        server.kill()
        server.join()
    print("\nsummary: hub CPU per frame besides keyframe decode (µs), and the share of frames delivered")
    for n, by_setup in results.items():
        t, e = by_setup["threads"], by_setup["event loop"]
        print(
            f"  {n:4d} cameras  threads {t['us_per_frame']:5.0f} ({t['frames_per_s'] / (FPS * n):.0%})  "
            f"event loop {e['us_per_frame']:5.0f} ({e['frames_per_s'] / (FPS * n):.0%})  "
            f"ratio {t['us_per_frame'] / e['us_per_frame']:.2f}x"
        )
    n = max(results)
    t, e = results[n]["threads"], results[n]["event loop"]
    return {
        "cameras": n,
        "threads_us_per_frame": round(t["us_per_frame"], 1),
        "event_loop_us_per_frame": round(e["us_per_frame"], 1),
        "threads_delivered": round(t["frames_per_s"] / (FPS * n), 3),
        "event_loop_delivered": round(e["frames_per_s"] / (FPS * n), 3),
        "ratio_vs_threads": round(t["us_per_frame"] / e["us_per_frame"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=lambda s: [int(x) for x in s.split(",")], default=[100, 200])
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--data-dir", type=Path, default=REPO / "var")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
