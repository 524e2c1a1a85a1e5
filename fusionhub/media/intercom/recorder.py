"""Push-to-talk bursts recorded as the hub forwarded them: Opus packets remuxed into Ogg, never re-encoded.

A burst runs from a grant to the end of that hold. Its packets (room pts, payload) are kept in
memory, bounded by the floor's own limits (max talk + grace), and written by PyAV in a thread
when the burst ends: an Ogg Opus file under the data directory, hashed (sha256), then reported
with `on_burst` so dispatch can keep a row and, for a case room, a timeline entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import av

from fusionhub.media.intercom.forward import FRAME, OPUS_RATE, OPUS_TIME_BASE
from fusionhub.signaling.messages import PttBurst

log = logging.getLogger(__name__)

BurstCallback = Callable[[PttBurst], Awaitable[None]]  # e.g. publish on the bus; awaited by the write task
REPORT_ATTEMPTS = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Speaker:
    """Who a burst is from."""

    session_id: str
    user_id: int
    name: str


@dataclass(slots=True)
class _Burst:
    speaker: Speaker
    started_at: float  # epoch seconds
    started_mono: float  # the same moment on the monotonic clock
    packets: list[tuple[int, bytes]] = field(default_factory=list)
    truncated: bool = False


def opus_head(channels: int) -> bytes:
    """The OpusHead identification header (RFC 7845 §5.1): 48 kHz, no pre-skip, no gain, family 0.

    Pre-skip 0 would be right (a burst starts mid-stream of the talker's encoder), but FFmpeg's
    Ogg muxer writes its own; `write_ogg_opus` reads back what was written.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, OPUS_RATE, 0, 0)


# samples per frame of each Opus TOC configuration (RFC 6716 §3.1): SILK, hybrid, CELT
_FRAME_SAMPLES = [480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4
# a 20 ms CELT frame that decodes to silence (TOC config 31, code 0), mono and stereo
SILENCE = {1: b"\xf8\xff\xfe", 2: b"\xfc\xff\xfe"}


def opus_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) an Opus packet decodes to, from its TOC byte (0 when unreadable)."""
    if not packet:
        return 0
    per_frame = _FRAME_SAMPLES[packet[0] >> 3]
    code = packet[0] & 0x03
    if code == 0:
        return per_frame
    if code in (1, 2):
        return 2 * per_frame
    return per_frame * (packet[1] & 0x3F) if len(packet) > 1 else 0


def _with_silence(packets: list[tuple[int, bytes]], channels: int) -> list[tuple[int, bytes]]:
    """Ogg keeps no per-packet time: fill each gap (lost packets, a pause) with silent frames,
    so that the file plays for as long as the burst lasted."""
    out: list[tuple[int, bytes]] = []
    expected: int | None = None
    for pts, payload in packets:
        if expected is not None:
            while pts - expected >= FRAME:
                out.append((expected, SILENCE[channels]))
                expected += FRAME
        out.append((pts, payload))
        expected = max(pts, expected or pts) + (opus_samples(payload) or FRAME)
    return out


def write_ogg_opus(path: Path, packets: list[tuple[int, bytes]]) -> tuple[float, int, str]:
    """Mux the packets (pts on a 48 kHz clock) into an Ogg Opus file: (duration s, size, sha256).

    Runs in a thread. Gaps become silent frames (Ogg would otherwise close them up). Written to
    a temporary name first, so a crash never leaves half a file under the final name.
    """
    if not packets:
        raise ValueError("a burst needs at least one packet")
    channels = 2 if packets[0][1] and packets[0][1][0] & 0x04 else 1  # the TOC's stereo flag
    packets = _with_silence(packets, channels)
    base = packets[0][0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=OPUS_RATE)
        stream.codec_context.layout = "stereo" if channels == 2 else "mono"
        stream.codec_context.extradata = opus_head(channels)
        stream.time_base = OPUS_TIME_BASE
        for pts, payload in packets:
            packet = av.Packet(payload)
            packet.pts = packet.dts = pts - base
            packet.time_base = OPUS_TIME_BASE
            packet.stream = stream
            container.mux(packet)
    digest = hashlib.sha256()
    size = 0
    pre_skip = 0
    with tmp.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            if size == 0:
                pre_skip = _pre_skip(chunk)
            digest.update(chunk)
            size += len(chunk)
    os.replace(tmp, path)
    samples = packets[-1][0] - base + (opus_samples(packets[-1][1]) or FRAME)
    return max(0, samples - pre_skip) / OPUS_RATE, size, digest.hexdigest()


def _pre_skip(head: bytes) -> int:
    """The pre-skip the muxer wrote (FFmpeg puts its encoder's own, 312, over ours): players drop
    that many samples at the start, so the burst's duration is counted without them."""
    at = head.find(b"OpusHead")
    if at < 0 or len(head) < at + 12:
        return 0
    return int.from_bytes(head[at + 10 : at + 12], "little")


class BurstRecorder:
    """Records one room's bursts; `close()` writes the one in progress and waits for every write."""

    def __init__(
        self,
        room_id: str,
        *,
        case_id: int | None,
        data_dir: Path,
        subdir: str,
        max_packets: int,
        on_burst: BurstCallback,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.room_id = room_id
        self._case_id = case_id
        self._data_dir = Path(data_dir)
        self._subdir = subdir
        self._max_packets = max_packets
        self._on_burst = on_burst
        self._wall = wall
        self._clock = clock
        self._current: _Burst | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self.written = 0
        self.failed = 0

    def start(self, speaker: Speaker) -> None:
        """A grant: a new burst from `speaker` (one in progress is finished first)."""
        if self._current is not None:
            self.finish(self._current.speaker.session_id, "preempted")
        self._current = _Burst(speaker, self._wall(), self._clock())

    def add(self, session_id: str, pts: int, payload: bytes) -> None:
        """One forwarded packet of the current burst."""
        burst = self._current
        if burst is None or burst.speaker.session_id != session_id:
            return
        if len(burst.packets) >= self._max_packets:
            burst.truncated = True
            return
        burst.packets.append((pts, payload))

    def finish(self, session_id: str, reason: str) -> None:
        """The hold of `session_id` ended: write its burst in a thread (nothing to write: nothing happens)."""
        burst = self._current
        if burst is None or burst.speaker.session_id != session_id:
            return
        self._current = None
        if not burst.packets:
            log.debug("room %s: burst of %s had no audio; not recorded", self.room_id, burst.speaker.name)
            return
        # the end is the start plus the time the hold lasted: a step of the wall clock (a VM's clock
        # set at resume, NTP) never makes a burst look longer or shorter than its audio
        ended_at = burst.started_at + max(0.0, self._clock() - burst.started_mono)
        task = asyncio.create_task(self._write(burst, reason, ended_at), name=f"ptt-write-{self.room_id}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _relative_path(self, burst_id: str, started_at: float) -> str:
        day = datetime.fromtimestamp(started_at, UTC).strftime("%Y%m%d")
        room = _UNSAFE.sub("_", self.room_id)[:80] or "room"
        return f"{self._subdir.strip('/')}/{room}/{day}/{burst_id}.ogg"

    async def _write(self, burst: _Burst, reason: str, ended_at: float) -> None:
        burst_id = str(uuid.uuid4())
        rel = self._relative_path(burst_id, burst.started_at)
        try:
            duration, size, sha = await asyncio.to_thread(write_ogg_opus, self._data_dir / rel, burst.packets)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            log.exception("room %s: could not write the burst of %s", self.room_id, burst.speaker.name)
            return
        self.written += 1
        if burst.truncated:
            log.warning("room %s: burst of %s cut at %d packets", self.room_id, burst.speaker.name, self._max_packets)
        msg = PttBurst(
            burst_id=burst_id,
            room_id=self.room_id,
            case_id=self._case_id,
            speaker_id=burst.speaker.user_id,
            speaker_name=burst.speaker.name,
            started_at=burst.started_at,
            ended_at=ended_at,
            end_reason=reason,
            duration_s=round(duration, 3),
            packets=len(burst.packets),
            path=rel,
            sha256=sha,
            size=size,
        )
        delay = 0.5
        for attempt in range(1, REPORT_ATTEMPTS + 1):
            try:
                await self._on_burst(msg)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # a record: retried, and the file stays on disk even when the report never arrives
                log.exception("room %s: burst %s not reported (attempt %d)", self.room_id, burst_id, attempt)
                await asyncio.sleep(delay)
                delay *= 2

    async def close(self) -> None:
        """Finish the burst in progress and wait until every burst is written (idempotent)."""
        if self._current is not None:
            self.finish(self._current.speaker.session_id, "closed")
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
