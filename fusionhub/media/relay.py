"""Fan-out of one camera's encoded packets to many viewers, without decoding or re-encoding.

The relay keeps the current group of pictures (from the last keyframe on) so a viewer who
joins late gets a decodable picture at once instead of waiting up to a GOP for the next
keyframe. Each viewer reads from its own bounded queue; the policy when a viewer cannot keep
up is: clear its queue, count the drops, and skip packets until the next keyframe. The viewer
sees a short freeze, never a smeared picture (a P-frame without its reference), and the hub
never buffers without limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from fusionhub.media.packets import EncodedPacket

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayItem:
    """A packet handed to one viewer; `backlog` marks packets replayed from the cached GOP."""

    packet: EncodedPacket
    backlog: bool


class RelaySubscription:
    """One viewer's bounded queue on a PacketRelay; read it with `await get()`."""

    def __init__(self, relay: PacketRelay, capacity: int, backlog: list[EncodedPacket]) -> None:
        self._relay = relay
        self._capacity = capacity
        self._queue: deque[RelayItem] = deque(RelayItem(p, True) for p in backlog)
        # without a cached keyframe to start from, anything before the next keyframe is undecodable
        self._need_keyframe = not backlog
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0  # packets this viewer never got (overflow or waiting for a keyframe)
        self.overflows = 0  # times the queue was full and cleared
        self.delivered = 0

    @property
    def closed(self) -> bool:
        """True once unsubscribed or the relay closed."""
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)

    async def get(self) -> RelayItem | None:
        """The next packet for this viewer; None once the subscription is closed."""
        while not self._queue:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.delivered += 1
        return self._queue.popleft()

    def close(self) -> None:
        """Stop this subscription (idempotent); a pending `get()` returns None."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._relay._forget(self)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resync(self) -> None:
        """Drop what is queued and wait for a keyframe (the source changed or the viewer lagged)."""
        self.dropped += len(self._queue)
        self._queue.clear()
        self._need_keyframe = True

    def _offer(self, packet: EncodedPacket) -> None:
        """Queue one live packet, applying the drop policy (runs on the loop thread, never blocks)."""
        if self._closed:
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        if len(self._queue) >= self._capacity:
            self.overflows += 1
            if self.overflows == 1:
                log.warning("relay %s: a viewer cannot keep up; skipping to the next keyframe", self._relay.name)
            else:
                log.debug("relay %s: viewer overflow #%d", self._relay.name, self.overflows)
            self._resync()
            if not packet.is_keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        self._queue.append(RelayItem(packet, False))
        self._wake()


class PacketRelay:
    """Per-camera fan-out (a PacketSink): caches the current GOP and feeds every subscription."""

    def __init__(self, name: str, *, queue_packets: int) -> None:
        if queue_packets < 2:
            raise ValueError("queue_packets must be at least 2")
        self.name = name
        self._queue_packets = queue_packets
        # the current GOP, or None when there is no keyframe yet or the GOP outgrew the bound
        self._gop: list[EncodedPacket] | None = None
        self._subs: set[RelaySubscription] = set()
        self._closed = False
        self.packets_in = 0
        self.keyframes_in = 0
        self._dropped_by_gone = 0  # drops counted on subscriptions that have since closed

    def on_packet(self, packet: EncodedPacket) -> None:
        """Take one packet from the source and hand it to every viewer (on the loop thread)."""
        if self._closed:
            return
        self.packets_in += 1
        if packet.is_keyframe:
            self.keyframes_in += 1
            self._gop = [packet]
        elif self._gop is not None:
            if len(self._gop) < self._queue_packets:
                self._gop.append(packet)
            else:
                # a GOP longer than a viewer's queue could not be replayed anyway: late joiners
                # wait for the next keyframe rather than the hub holding an ever-growing GOP
                self._gop = None
        for sub in list(self._subs):
            sub._offer(packet)

    def subscribe(self) -> RelaySubscription:
        """A new viewer; its first packet is the cached keyframe if there is one, else the next keyframe."""
        if self._closed:
            raise RuntimeError(f"relay {self.name} is closed")
        sub = RelaySubscription(self, self._queue_packets, list(self._gop or ()))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: RelaySubscription) -> None:
        """Remove a viewer (idempotent)."""
        sub.close()

    def reset(self) -> None:
        """The source was replaced: forget the cached GOP; viewers resume at the new source's first keyframe."""
        self._gop = None
        for sub in self._subs:
            sub._resync()

    def close(self) -> None:
        """Close every subscription and refuse new ones (idempotent)."""
        self._closed = True
        self._gop = None
        for sub in list(self._subs):
            sub.close()

    def _forget(self, sub: RelaySubscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            self._dropped_by_gone += sub.dropped

    @property
    def subscriber_count(self) -> int:
        """Viewers currently subscribed."""
        return len(self._subs)

    @property
    def cached_packets(self) -> int:
        """Packets of the current GOP held for late joiners."""
        return len(self._gop) if self._gop is not None else 0

    def stats(self) -> dict[str, int]:
        """Counters for monitoring."""
        return {
            "packets_in": self.packets_in,
            "keyframes_in": self.keyframes_in,
            "viewers": len(self._subs),
            "cached_packets": self.cached_packets,
            "dropped": self._dropped_by_gone + sum(s.dropped for s in self._subs),
        }
