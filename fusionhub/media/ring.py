"""PacketRing: the last N seconds of one source's encoded packets (video and audio), for clips.

It is fed alongside the relay (same packets, no copy: packets are immutable) and bounded two
ways: by age and by bytes. It is kept as whole groups of pictures, each starting at a video
keyframe, so any window taken from it starts with a picture a player can decode; the oldest
GOP goes first. A GOP that alone outgrows the byte bound (a source that never sends a
keyframe) is dropped and the ring waits for the next keyframe.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from fusionhub.media.packets import AudioPacket, EncodedPacket


class RingEntry(NamedTuple):
    """One packet and when it arrived (epoch seconds): the clock clips are cut on. (A named tuple:
    one is made for every packet of every camera, in a third of a frozen dataclass's time.)"""

    at: float
    packet: EncodedPacket | AudioPacket


@dataclass(slots=True)
class _Gop:
    start_at: float
    entries: list[RingEntry] = field(default_factory=list)
    size: int = 0


class PacketRing:
    """A bounded, keyframe-aligned history of a source's packets (on the loop thread, never blocks)."""

    def __init__(self, *, seconds: float, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        if seconds <= 0 or max_bytes <= 0:
            raise ValueError("seconds and max_bytes must be positive")
        self._seconds = seconds
        self._max_bytes = max_bytes
        self._clock = clock
        self._gops: deque[_Gop] = deque()
        self._bytes = 0
        self.dropped_gops = 0  # GOPs dropped because of the byte bound (age is the normal way out)

    def on_packet(self, packet: EncodedPacket) -> None:
        """A video packet: a keyframe opens a new GOP; others join the current one."""
        now = self._clock()
        gops = self._gops
        if packet.is_keyframe:
            gops.append(_Gop(start_at=now))
        elif not gops:
            return  # nothing decodable before the first keyframe
        self._add(RingEntry(now, packet), len(packet.data))

    def on_audio(self, packet: AudioPacket) -> None:
        """An audio packet joins the current GOP (dropped before the first keyframe)."""
        if self._gops:
            self._add(RingEntry(self._clock(), packet), len(packet.data))

    def _add(self, entry: RingEntry, size: int) -> None:
        gops = self._gops
        gop = gops[-1]
        gop.entries.append(entry)
        gop.size += size
        self._bytes += size
        # trimmed only when something can go (this runs for every packet of every camera)
        if self._bytes > self._max_bytes or (len(gops) > 1 and gops[1].start_at <= entry.at - self._seconds):
            self._trim(entry.at)

    def _trim(self, now: float) -> None:
        cutoff = now - self._seconds
        # keep the newest GOP that starts before the cutoff: the window's first picture
        while len(self._gops) > 1 and (self._gops[1].start_at <= cutoff or self._bytes > self._max_bytes):
            if self._gops[1].start_at > cutoff:
                self.dropped_gops += 1
            self._bytes -= self._gops.popleft().size
        if self._bytes > self._max_bytes:  # one GOP alone is too big: give it up
            self.dropped_gops += 1
            self.clear()

    def clear(self) -> None:
        """Forget everything (the source was replaced)."""
        self._gops.clear()
        self._bytes = 0

    def window(self, start: float, end: float) -> list[RingEntry]:
        """Entries from the last keyframe at or before `start` (or the first one after) up to `end`."""
        gops = list(self._gops)
        first = 0
        for i, gop in enumerate(gops):
            if gop.start_at <= start:
                first = i
        return [e for gop in gops[first:] for e in gop.entries if e.at <= end]

    @property
    def bytes(self) -> int:
        """Bytes of packet data held."""
        return self._bytes

    @property
    def span_s(self) -> float:
        """Seconds from the oldest held GOP to the newest packet."""
        if not self._gops or not self._gops[-1].entries:
            return 0.0
        return self._gops[-1].entries[-1].at - self._gops[0].start_at

    def stats(self) -> dict[str, float | int]:
        """Counters for monitoring."""
        return {"bytes": self._bytes, "span_s": round(self.span_s, 2), "gops": len(self._gops), "dropped_gops": self.dropped_gops}
