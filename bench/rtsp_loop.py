"""A cheap RTSP camera farm for benchmarks: a clip per path, any number of clients, RTP interleaved over TCP.

`serve(clips, port, ready)` runs in its own process; `clips` maps a path (`/camera`, `/sub`) to
its clip, so each simulated camera can have a main stream and a substream. Every client gets the clip from a random
frame, looping, at 25 fps with its own phase (real cameras are not in step), as H.264 RTP
(RFC 6184: single NAL units, FU-A above 1400 bytes) inside the RTSP connection (RFC 2326 10.12).
The packets are built once; sending one frame to one client is a copy, a header patch per packet
(sequence number and timestamp, continuous across loops) and one write. It answers OPTIONS,
DESCRIBE, SETUP (TCP only), PLAY, GET_PARAMETER and TEARDOWN, which is what FFmpeg's RTSP client
and bench/ingest_engines.py's prototype ask; no authentication, loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import struct
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path

import av

from fusionhub.media.annexb import PPS, SPS, START, AnnexB

FPS = 25
CLOCK = 90_000
MTU = 1400
_STEP = CLOCK // FPS


@dataclass
class _Frame:
    data: bytes  # interleaved RTP packets of one access unit
    offsets: list[int]  # where each packet's RTP header starts in `data`


@dataclass
class _Client:
    writer: asyncio.StreamWriter
    frames: list[_Frame]
    frame: int
    due: float
    seq: int = field(default_factory=lambda: random.randrange(1 << 16))
    ts: int = field(default_factory=lambda: random.randrange(1 << 32))


def packetise(clip: Path) -> tuple[list[_Frame], bytes, bytes]:
    """The clip's access units as RTP packets (sequence and timestamp patched at send), SPS, PPS."""
    frames: list[_Frame] = []
    sps = pps = b""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        annexb = AnnexB(stream.codec_context.extradata)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            nals = [n for n in annexb.convert(packet, bool(packet.is_keyframe)).split(START) if n]
            chunks: list[bytes] = []
            offsets: list[int] = []
            size = 0
            for i, nal in enumerate(nals):
                kind = nal[0] & 0x1F
                if kind == SPS:
                    sps = nal
                elif kind == PPS:
                    pps = nal
                if len(nal) <= MTU:
                    payloads = [nal]
                else:
                    parts = [nal[1 + k : 1 + k + MTU] for k in range(0, len(nal) - 1, MTU)]
                    payloads = [
                        bytes([(nal[0] & 0xE0) | 28, (0x80 if k == 0 else 0) | (0x40 if k == len(parts) - 1 else 0) | kind])
                        + part
                        for k, part in enumerate(parts)
                    ]
                for k, payload in enumerate(payloads):
                    marker = i == len(nals) - 1 and k == len(payloads) - 1
                    rtp = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, 0, 0, 0x46480001) + payload
                    chunks.append(b"$\x00" + struct.pack("!H", len(rtp)) + rtp)
                    offsets.append(size + 4)
                    size += 4 + len(rtp)
            frames.append(_Frame(b"".join(chunks), offsets))
    return frames, sps, pps


class _Stream:
    """One clip as served: its packets and its SDP."""

    def __init__(self, clip: Path) -> None:
        self.frames, sps, pps = packetise(clip)
        sprop = f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()}"
        self.sdp = (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sprop}\r\na=control:trackID=0\r\n"
        ).encode()


class _Farm:
    def __init__(self, clips: dict[str, Path]) -> None:
        self.streams = {path.strip("/"): _Stream(clip) for path, clip in clips.items()}
        self.playing: list[_Client] = []

    def stream(self, url: str) -> _Stream:
        """The stream a request URL names by its first path segment (the first clip for any other)."""
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0].split("/", 1)[0]
        return self.streams.get(path) or next(iter(self.streams.values()))

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved data from the client (RTCP reports): skipped
                    header = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(header[1:3], "big"))
                    continue
                head = (first + await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                method, url = head.split(" ", 2)[:2]
                cseq = next((ln.split(":", 1)[1].strip() for ln in head.split("\r\n") if ln.lower().startswith("cseq:")), "0")
                extra, body = "", b""
                if method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n"
                elif method == "DESCRIBE":
                    body = self.stream(url).sdp
                    extra = f"Content-Base: {url}/\r\nContent-Type: application/sdp\r\n"
                elif method == "SETUP":
                    extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 46480001;timeout=60\r\n"
                elif method == "PLAY":
                    extra = "Session: 46480001\r\n"
                reply = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body
                writer.write(reply)
                if method == "PLAY":
                    frames = self.stream(url).frames
                    due = time.monotonic() + random.random() / FPS
                    self.playing.append(_Client(writer, frames, random.randrange(len(frames)), due))
                elif method == "TEARDOWN":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.playing = [c for c in self.playing if c.writer is not writer]
            writer.close()

    async def pace(self) -> None:
        """Every few milliseconds, send each client the frames that are due (a late client skips ahead)."""
        while True:
            await asyncio.sleep(0.004)
            now = time.monotonic()
            for c in self.playing:
                if c.due > now:
                    continue
                if now - c.due > 1.0:
                    c.due = now  # the box stalled: go on from now rather than burst
                frame = c.frames[c.frame % len(c.frames)]
                data = bytearray(frame.data)
                for offset in frame.offsets:
                    struct.pack_into("!HI", data, offset + 2, c.seq & 0xFFFF, c.ts & 0xFFFFFFFF)
                    c.seq += 1
                c.writer.write(data)
                c.frame += 1
                c.ts += _STEP
                c.due += 1 / FPS


FARM_NICE = -10  # real cameras send on time whatever the hub's box is doing


def serve(clips: dict[str, Path], port: int, ready: Event) -> None:
    """Run the farm on 127.0.0.1:port until the process is killed; `ready` is set once it listens.

    It asks for a higher CPU priority (FARM_NICE; allowed to root): its cameras stand for
    cameras with CPUs of their own, whose frames leave on time however loaded the hub's box is.
    Without it, a loaded box delays the farm's pacing, and keyframes that come in late look like
    the hub's doing. Its CPU still counts against the box (the bench prints it)."""
    try:
        os.nice(FARM_NICE)
    except PermissionError:
        pass  # not root: it runs at the hub's priority

    async def main() -> None:
        farm = _Farm(clips)
        server = await asyncio.start_server(farm.client, "127.0.0.1", port)
        ready.set()
        async with server:
            await farm.pace()

    asyncio.run(main())
