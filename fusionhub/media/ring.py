"""PacketRing: the last N seconds of one source's encoded packets (video and audio), for clips.

It is fed alongside the relay (the same bytes, not copied: packets are immutable) and bounded two
ways: by age and by bytes. It is kept as whole groups of pictures, each starting at a video
keyframe, so any window taken from it starts with a picture a player can decode; the oldest
GOP goes first. A GOP that alone outgrows the byte bound (a source that never sends a
keyframe) is dropped and the ring waits for the next keyframe.

Inside, an entry is a plain tuple of bytes, numbers and strings, and only `window()` makes packets
again. The cyclic garbage collector stops tracking such a tuple at its first collection, while it
tracks a packet object (or a named tuple) for as long as it lives. The rings hold every camera's
last 30 s (150,000 packets at 200 cameras): kept as packet objects, each full collection walked
them all and stopped the event loop for about 0.2 s.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket


class RingEntry(NamedTuple):
    """One packet and when it arrived (epoch seconds): the clock clips are cut on. What `window()`
    gives; the ring itself holds plain tuples (see the module's docstring)."""

    at: float
    packet: EncodedPacket | AudioPacket


# as held: (at, data, pts, is_keyframe, codec) for video, (at, data, pts, codec, sample_rate,
# channels, extradata) for audio
_Held = tuple[float, bytes, int, bool, str] | tuple[float, bytes, int, str, int, int, bytes]


@dataclass(slots=True)
class _Gop:
    start_at: float
    entries: list[_Held] = field(default_factory=list)
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
        data = packet.data
        self._add((now, data, packet.pts, packet.is_keyframe, packet.codec), now, len(data))

    def on_audio(self, packet: AudioPacket) -> None:
        """An audio packet joins the current GOP (dropped before the first keyframe)."""
        if self._gops:
            fmt, now = packet.format, self._clock()
            held = (now, packet.data, packet.pts, fmt.codec, fmt.sample_rate, fmt.channels, fmt.extradata)
            self._add(held, now, len(packet.data))

    def _add(self, held: _Held, now: float, size: int) -> None:
        gops = self._gops
        gop = gops[-1]
        gop.entries.append(held)
        gop.size += size
        self._bytes += size
        # trimmed only when something can go (this runs for every packet of every camera)
        if self._bytes > self._max_bytes or (len(gops) > 1 and gops[1].start_at <= now - self._seconds):
            self._trim(now)

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
        formats: dict[tuple[str, int, int, bytes], AudioFormat] = {}  # one object per format, as a source has
        out: list[RingEntry] = []
        for gop in gops[first:]:
            for held in gop.entries:
                if held[0] > end:
                    continue
                if len(held) == 5:
                    at, data, pts, key, codec = held
                    out.append(RingEntry(at, EncodedPacket(data, pts, key, codec)))
                else:
                    at, data, pts, codec, rate, channels, extradata = held
                    fmt = formats.setdefault((codec, rate, channels, extradata), AudioFormat(codec, rate, channels, extradata))
                    out.append(RingEntry(at, AudioPacket(data, pts, fmt)))
        return out

    @property
    def bytes(self) -> int:
        """Bytes of packet data held."""
        return self._bytes

    @property
    def span_s(self) -> float:
        """Seconds from the oldest held GOP to the newest packet."""
        if not self._gops or not self._gops[-1].entries:
            return 0.0
        return self._gops[-1].entries[-1][0] - self._gops[0].start_at

    def stats(self) -> dict[str, float | int]:
        """Counters for monitoring."""
        return {"bytes": self._bytes, "span_s": round(self.span_s, 2), "gops": len(self._gops), "dropped_gops": self.dropped_gops}
