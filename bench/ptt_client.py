"""Push-to-talk participants as aiortc peers, for the intercom benchmark and the intercom tests.

    python -m bench.ptt_client --url http://127.0.0.1:PORT/join/ROOM --clients 16 --first-index 0

A participant joins with one sendrecv Opus transceiver and a data channel "floor" (the hub's
protocol, signaling/intercom.py). While it holds the floor its `TalkTrack` sends pre-encoded
Opus packets in real time through aiortc's pack path (no encoder work); otherwise it sends
nothing, like a browser after `replaceTrack(null)`. Received audio is tapped below aiortc's
decoder (fusionhub.media.rtptap) and decoded here with one libopus decoder per participant,
only to find the talker's "timestamp tones": 100 ms of 1 kHz at the start of every 500 ms, so
that mouth-to-ear latency is the time from the talker handing out a tone's first packet to the
listener receiving the first loud packet (time.monotonic() is shared by processes on Linux).

Process mode prints one JSON line when its participants are connected, then answers stdin:
`talk I` / `release I` (participant I requests the floor and talks until released),
`probe I` (request, wait for the grant, release at once: a grant-latency sample),
`pending` → how many talk/probe requests still wait for the hub,
`report T0 T1` → per-participant figures in [T0, T1]; `quit` or EOF → close and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from fusionhub.media.ice import pin_host_addresses
from fusionhub.media.rtptap import tap_receiver

RATE = 48_000
FRAME = 960
TIME_BASE = Fraction(1, RATE)
CYCLE = 25  # packets per tone cycle (500 ms)
TONE = 5  # loud packets at the start of each cycle (100 ms)
LOUD_RMS = 1500.0
QUIET_RMS = 400.0
KEPT = 20_000  # arrival records kept per participant
CONNECT_TIMEOUT_S = 60.0

Exchange = Callable[[str], Awaitable[str]]  # offer SDP -> answer SDP


def tone_cycle(freq: float = 1000.0, seed: int = 1) -> list[bytes]:
    """One 500 ms cycle of Opus packets (mono, 20 ms): 100 ms of tone, then faint noise."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = RATE
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = 32_000
    enc.time_base = TIME_BASE
    enc.options = {"application": "voip"}
    rng = np.random.default_rng(seed)
    packets: list[bytes] = []
    i = 0
    # encode three cycles and keep the last: the encoder has settled (no start-up transient)
    while len(packets) < 3 * CYCLE:
        t = np.arange(FRAME) + i * FRAME
        if i % CYCLE < TONE:
            x = np.sin(2 * np.pi * freq * t / RATE) * 10_000
        else:
            x = rng.normal(0, 30, FRAME)
        frame = av.AudioFrame.from_ndarray(x.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i * FRAME
        packets += [bytes(p) for p in enc.encode(frame)]
        i += 1
    return packets[2 * CYCLE : 3 * CYCLE]


class TalkTrack(MediaStreamTrack):
    """Pre-encoded Opus in real time while `talking` is set; silent (sends nothing) otherwise."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets = packets
        self.talking = asyncio.Event()
        self._index = 0
        self._pts = 0
        self._next_at = 0.0
        self.onsets: deque[float] = deque(maxlen=KEPT)  # when each tone's first packet went out
        self.sent = 0

    def start_talking(self) -> None:
        self._index = 0
        self._next_at = time.monotonic()
        self.talking.set()

    def stop_talking(self) -> None:
        self.talking.clear()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        await self.talking.wait()
        delay = self._next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_at = max(self._next_at + FRAME / RATE, time.monotonic() - 0.1)
        if not self.talking.is_set():
            await self.talking.wait()
        payload = self._packets[self._index % len(self._packets)]
        if self._index % CYCLE == 0:
            self.onsets.append(time.monotonic())
        self._index += 1
        self._pts += FRAME
        packet = av.Packet(payload)
        packet.pts = packet.dts = self._pts
        packet.time_base = TIME_BASE
        self.sent += 1
        return packet


class PttClient:
    """One participant: joins, asks for and gives up the floor, counts and times what it hears."""

    def __init__(self, index: int, packets: list[bytes], *, keep_payloads: bool = False) -> None:
        self.index = index
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = TalkTrack(packets)
        self.keep_payloads = keep_payloads
        self.channel = self.pc.createDataChannel("floor")
        self.messages: deque[tuple[float, dict[str, Any]]] = deque(maxlen=KEPT)
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self.arrivals: deque[float] = deque(maxlen=KEPT)
        self.onsets: deque[float] = deque(maxlen=KEPT)
        self.payloads: deque[bytes] = deque(maxlen=KEPT)
        self.timestamps: deque[int] = deque(maxlen=KEPT)
        self.grant_ms: list[float] = []
        self.grant_timeouts = 0
        self.session: str | None = None
        self.connected = asyncio.Event()
        self.opened = asyncio.Event()
        self.error: str | None = None
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.sample_rate = RATE
        self._decoder.layout = "mono"
        self._decoder.format = "s16"
        self._quiet = True
        self.you: str | None = None

        @self.channel.on("open")
        def _open() -> None:
            self.opened.set()

        @self.channel.on("message")
        def _message(text: str | bytes) -> None:
            msg = json.loads(text)
            self.messages.append((time.monotonic(), msg))
            if msg.get("type") == "hello":
                self.you = msg.get("you")
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(msg)

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

    async def connect(self, exchange: Exchange) -> None:
        """Offer, let `exchange` get the hub's answer, wait until connected and the channel is open."""
        transceiver = self.pc.addTransceiver(self.track, direction="sendrecv")
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "audio/opus"])
        tap_receiver(transceiver.receiver, self._on_rtp)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await exchange(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await self.connected.wait()
            await self.opened.wait()

    def _on_rtp(self, packet: RtpPacket, arrival_ms: int) -> None:
        now = time.monotonic()
        self.arrivals.append(now)
        self.timestamps.append(packet.timestamp)
        if self.keep_payloads:
            self.payloads.append(bytes(packet.payload))
        try:
            frames = self._decoder.decode(av.Packet(packet.payload))
        except av.FFmpegError:
            return
        for frame in frames:
            samples = frame.to_ndarray().astype(np.float32)
            rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
            if self._quiet and rms > LOUD_RMS:
                self.onsets.append(now)
                self._quiet = False
            elif rms < QUIET_RMS:
                self._quiet = True

    def send(self, kind: str, **data: Any) -> None:
        self.channel.send(json.dumps({"type": kind, **data}))

    async def expect(self, *kinds: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of one of these types (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self._inbox.get()
                if msg.get("type") in kinds:
                    return msg

    def drain(self) -> None:
        while not self._inbox.empty():
            self._inbox.get_nowait()

    async def request(self, *, emergency: bool = False, timeout: float = 5.0) -> dict[str, Any]:
        """Ask for the floor; returns the hub's answer (granted, queued or denied), timing a grant."""
        self.drain()
        sent = time.monotonic()
        self.send("request", emergency=emergency)
        try:
            reply = await self.expect("granted", "queued", "denied", timeout=timeout)
        except TimeoutError:
            self.grant_timeouts += 1
            raise
        if reply["type"] == "granted":
            self.grant_ms.append((time.monotonic() - sent) * 1000)
            self.track.start_talking()
        return reply

    def release(self) -> None:
        """Stop talking and give the floor back."""
        self.track.stop_talking()
        self.send("release")

    def report(self, t0: float, t1: float) -> dict[str, Any]:
        arrivals = [t for t in self.arrivals if t0 <= t <= t1]
        return {
            "index": self.index,
            "packets": len(arrivals),
            "pps": len(arrivals) / (t1 - t0) if t1 > t0 else 0.0,
            "onsets": [t for t in self.onsets if t0 <= t <= t1],
            "talk_onsets": [t for t in self.track.onsets if t0 - 1 <= t <= t1],
            "grant_ms": self.grant_ms,
            "grant_timeouts": self.grant_timeouts,
            "connected": self.pc.connectionState == "connected",
        }

    async def close(self) -> None:
        self.track.stop_talking()
        self.track.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.pc.close()


def http_exchange(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> Exchange:
    """POST the offer to a join URL (application/sdp), return the answer."""

    async def exchange(offer: str) -> str:
        for _ in range(20):
            async with http.post(url, data=offer, headers={"Content-Type": "application/sdp", **(headers or {})}) as r:
                if r.status == 503:
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                body = await r.text()
                if r.status != 201:
                    raise RuntimeError(f"join answered {r.status}: {body[:200]}")
                return body
        raise RuntimeError("the hub kept refusing the join")

    return exchange


async def _probe(client: PttClient) -> None:
    try:
        reply = await client.request()
        if reply["type"] == "granted":
            await asyncio.sleep(0.02)  # one packet, so the floor is really used
        client.release()
        await client.expect("ended", "dequeued", timeout=5)
    except TimeoutError:
        client.release()  # counted in grant_timeouts when the request itself went unanswered


async def run(args: argparse.Namespace) -> None:
    pin_host_addresses(["127.0.0.1"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    packets = tone_cycle()
    clients = {args.first_index + i: PttClient(args.first_index + i, packets) for i in range(args.clients)}
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S)) as http:

        async def connect(c: PttClient) -> None:
            try:
                await c.connect(http_exchange(http, f"{args.url}?name=p{c.index}"))
            except Exception as exc:  # reported, never raised: one failed participant is a figure
                c.error = f"{type(exc).__name__}: {exc}"[:300]

        await asyncio.gather(*(connect(c) for c in clients.values()))
        summary = [{"index": c.index, "ok": c.error is None, "error": c.error} for c in clients.values()]
        print(json.dumps({"event": "connected", "clients": summary}), flush=True)
        try:
            while True:
                line = (await reader.readline()).decode().split()
                if not line or line[0] == "quit":
                    break
                cmd = line[0]
                if cmd == "pending":
                    print(json.dumps({"event": "pending", "n": len(tasks)}), flush=True)
                    continue
                if cmd == "report":
                    t0, t1 = float(line[1]), float(line[2])
                    out = {"event": "report", "clients": [c.report(t0, t1) for c in clients.values()]}
                    print(json.dumps(out), flush=True)
                    continue
                client = clients[int(line[1])]
                if cmd == "talk":
                    task = asyncio.create_task(client.request())
                elif cmd == "probe":
                    task = asyncio.create_task(_probe(client))
                elif cmd == "release":
                    client.release()
                    continue
                else:
                    continue
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(c.close() for c in clients.values()))
    pin_host_addresses(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="join endpoint, http://127.0.0.1:PORT/join/ROOM")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--first-index", type=int, default=0)
    args = ap.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        ap.error("participants connect to 127.0.0.1 only")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
