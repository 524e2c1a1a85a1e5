"""The holder's Opus packets on one room timeline, and the per-listener track that sends them.

Each talker's browser numbers its RTP timestamps from its own random origin, and a room changes
talker every few seconds. `RoomClock` maps every forwarded packet onto one 48 kHz timeline that
only moves forward: within a burst it follows the talker's own timestamps (so a real gap stays a
gap), and at a change of talker it continues from the previous packet plus the wall-clock time
in between. Every listener's sender gets the same `av.Packet` (one object per packet for the
whole room, never copied per listener); aiortc's Opus `pack()` only reads it, and adds the
sender's own random timestamp origin, so each listener sees monotonic timestamps whoever talks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

OPUS_RATE = 48_000
OPUS_TIME_BASE = Fraction(1, OPUS_RATE)
FRAME = 960  # 20 ms, what browsers send
MAX_STEP = 5 * OPUS_RATE  # a longer jump inside one burst is a clock reset, not a pause
HALF_RANGE = 1 << 31


class RoomClock:
    """Maps (talker, RTP timestamp, arrival) to a monotonic room pts on a 48 kHz clock."""

    def __init__(self) -> None:
        self._speaker: str | None = None
        self._last_src = 0
        self._last_pts: int | None = None
        self._last_at = 0.0
        self.late = 0  # packets older than the last one forwarded (reordered or repeated): dropped

    def new_burst(self) -> None:
        """The next packet starts a burst (a grant): place it by wall-clock time."""
        self._speaker = None

    def stamp(self, speaker: str, rtp_ts: int, now: float) -> int | None:
        """The room pts for this packet, or None when it is older than what was already sent."""
        if self._last_pts is None:
            pts = 0
        elif speaker != self._speaker:
            pts = self._last_pts + max(FRAME, round((now - self._last_at) * OPUS_RATE))
        else:
            step = (rtp_ts - self._last_src) & 0xFFFFFFFF
            if step == 0 or step >= HALF_RANGE:
                self.late += 1
                return None
            if step > MAX_STEP:
                step = max(FRAME, round((now - self._last_at) * OPUS_RATE))
            pts = self._last_pts + step
        self._speaker, self._last_src, self._last_pts, self._last_at = speaker, rtp_ts, pts, now
        return pts


def make_packet(payload: bytes, pts: int) -> av.Packet:
    """The one av.Packet every listener's sender packs for this payload."""
    packet = av.Packet(payload)
    packet.pts = pts
    packet.dts = pts
    packet.time_base = OPUS_TIME_BASE
    return packet


class ForwardTrack(MediaStreamTrack):
    """A listener's outgoing audio: the room's forwarded packets, as they are (no transcoding).

    Bounded: at most `capacity` packets wait; when full the oldest is dropped and counted, so a
    listener whose sender stalls hears a gap and then live audio, never a growing delay.
    """

    kind = "audio"

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self._queue: deque[av.Packet] = deque(maxlen=capacity)
        self._waiter: asyncio.Future[None] | None = None
        self.packets_sent = 0
        self.dropped = 0

    def offer(self, packet: av.Packet) -> None:
        """Queue a packet for this listener (on the loop, never blocks)."""
        if self.readyState != "live":
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest on append
        self._queue.append(packet)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def recv(self) -> av.Packet:
        """The next packet for the sender (waits while nobody talks)."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.packets_sent += 1
        return self._queue.popleft()

    def stop(self) -> None:
        """End the track (idempotent); a waiting `recv()` raises MediaStreamError."""
        super().stop()
        self._queue.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
