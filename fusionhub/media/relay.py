"""Fan-out of one camera's encoded packets to many viewers, without decoding or re-encoding.

The relay keeps the current group of pictures (from the last keyframe on) so a viewer who
joins late gets a decodable picture at once instead of waiting up to a GOP for the next
keyframe. Each viewer reads from its own bounded queue; the policy when a viewer cannot keep
up is: clear its queue, count the drops, and skip packets until the next keyframe. The viewer
sees a short freeze, never a smeared picture (a P-frame without its reference), and the hub
never buffers without limit.

Every packet is wrapped once in a RelayItem shared by all viewers; its `memo` holds what the
WebRTC side derives from the packet (the RTP payloads), so that work is done once per packet,
not once per viewer. A viewer's keyframe request (PLI/FIR) is answered from the cache too:
`RelaySubscription.restart_at_keyframe()` replays the cached GOP from its keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from fusionhub.media.packets import EncodedPacket

log = logging.getLogger(__name__)

OVERFLOW_WARN_S = 60.0  # at most one overflow warning per relay this often (the rest at debug)


class PacketMemo:
    """Data derived from one packet once and shared by every viewer (e.g. its RTP payloads)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: object | None = None


class RelayItem(NamedTuple):
    """A packet handed to viewers; `backlog` marks packets replayed from the cached GOP.

    A named tuple rather than a frozen dataclass: one is made for every packet of every camera,
    and a tuple is made in a third of the time."""

    packet: EncodedPacket
    backlog: bool
    memo: PacketMemo

    def replayed(self) -> RelayItem:
        """The same packet (and memo) marked as replayed from the cache."""
        return self if self.backlog else RelayItem(self.packet, True, self.memo)


class RelaySubscription:
    """One viewer's bounded queue on a PacketRelay; read it with `await get()`."""

    def __init__(self, relay: PacketRelay, capacity: int, backlog: list[RelayItem]) -> None:
        self._relay = relay
        self._capacity = capacity
        self._queue: deque[RelayItem] = deque(item.replayed() for item in backlog)
        # without a cached keyframe to start from, anything before the next keyframe is undecodable
        self._need_keyframe = not backlog
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0  # packets this viewer never got (overflow or waiting for a keyframe)
        self.overflows = 0  # times the queue was full and cleared
        self.delivered = 0
        self.restarts = 0  # keyframe requests answered by replaying the cached GOP

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

    def restart_at_keyframe(self) -> bool:
        """Answer a viewer's keyframe request (its decoder lost a reference picture).

        The queue is replaced by the cached GOP, from its keyframe up to the live edge, so the
        viewer shows a correct picture again within one round trip and is then live; returns
        True. Without a cached GOP the viewer skips to the next keyframe (and the relay's
        `on_keyframe_wanted` hook, when a source set one, asks upstream); returns False.
        """
        if self._closed:
            return False
        backlog = self._relay._gop
        self._queue.clear()
        if backlog:
            self._queue.extend(item.replayed() for item in backlog)
            self._need_keyframe = False
            self.restarts += 1
            self._wake()
            return True
        self._need_keyframe = True
        self._relay._want_keyframe()
        return False

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resync(self) -> None:
        """Drop what is queued and wait for a keyframe (the source changed or the viewer lagged)."""
        self.dropped += len(self._queue)
        self._queue.clear()
        self._need_keyframe = True

    def _offer(self, item: RelayItem) -> None:
        """Queue one live packet, applying the drop policy (runs on the loop thread, never blocks)."""
        if self._closed:
            return
        packet = item.packet
        if self._need_keyframe:
            if not packet.is_keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        if len(self._queue) >= self._capacity:
            self.overflows += 1
            self._relay._note_overflow()
            self._resync()
            if not packet.is_keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        self._queue.append(item)
        self._wake()


class PacketRelay:
    """Per-camera fan-out (a PacketSink): caches the current GOP and feeds every subscription."""

    def __init__(self, name: str, *, queue_packets: int) -> None:
        if queue_packets < 2:
            raise ValueError("queue_packets must be at least 2")
        self.name = name
        self._queue_packets = queue_packets
        # the current GOP, or None when there is no keyframe yet or the GOP outgrew the bound
        self._gop: list[RelayItem] | None = None
        # set by a source that can be asked for a keyframe (a WHIP publisher): called when a
        # viewer needs one and none is cached
        self.on_keyframe_wanted: Callable[[], None] | None = None
        # set by a source that reads differently when someone consumes its packets live (the
        # event-loop engine batches the reads of a camera only analytics samples): called with
        # True when the first subscriber comes and False when the last one goes
        self.on_watched: Callable[[bool], None] | None = None
        self._subs: set[RelaySubscription] = set()
        self._closed = False
        self.packets_in = 0
        self.keyframes_in = 0
        self._dropped_by_gone = 0  # drops counted on subscriptions that have since closed
        self._restarts_by_gone = 0
        self.overflows = 0  # viewer queue overflows, all viewers together
        self._overflow_warned_at = float("-inf")

    def on_packet(self, packet: EncodedPacket) -> None:
        """Take one packet from the source and hand it to every viewer (on the loop thread)."""
        if self._closed:
            return
        self.packets_in += 1
        item = RelayItem(packet, False, PacketMemo())  # one per packet, shared by every viewer
        if packet.is_keyframe:
            self.keyframes_in += 1
            self._gop = [item]
        elif self._gop is not None:
            if len(self._gop) < self._queue_packets:
                self._gop.append(item)
            else:
                # a GOP longer than a viewer's queue could not be replayed anyway: late joiners
                # wait for the next keyframe rather than the hub holding an ever-growing GOP
                self._gop = None
        if self._subs:  # most cameras have no viewer most of the time
            for sub in list(self._subs):
                sub._offer(item)

    def subscribe(self) -> RelaySubscription:
        """A new viewer; its first packet is the cached keyframe if there is one, else the next keyframe."""
        if self._closed:
            raise RuntimeError(f"relay {self.name} is closed")
        sub = RelaySubscription(self, self._queue_packets, list(self._gop or ()))
        self._subs.add(sub)
        if len(self._subs) == 1:
            self._call_hook(self.on_watched, True)
        return sub

    def unsubscribe(self, sub: RelaySubscription) -> None:
        """Remove a viewer (idempotent)."""
        sub.close()

    def reset(self) -> None:
        """The source was replaced or reconnected: forget the cached GOP; viewers resume at its next keyframe."""
        self._gop = None
        for sub in self._subs:
            sub._resync()

    def close(self) -> None:
        """Close every subscription and refuse new ones (idempotent)."""
        self._closed = True
        self._gop = None
        for sub in list(self._subs):
            sub.close()

    def _note_overflow(self) -> None:
        # one warning per relay per OVERFLOW_WARN_S: when the hub is saturated every viewer
        # overflows at once, and a hundred identical warnings would hide everything else
        self.overflows += 1
        now = time.monotonic()
        if now - self._overflow_warned_at >= OVERFLOW_WARN_S:
            self._overflow_warned_at = now
            log.warning(
                "relay %s: viewers cannot keep up (%d overflows so far); they skip to the next keyframe",
                self.name,
                self.overflows,
            )
        else:
            log.debug("relay %s: viewer overflow #%d", self.name, self.overflows)

    def _want_keyframe(self) -> None:
        self._call_hook(self.on_keyframe_wanted)

    def _call_hook(self, hook: Callable[..., None] | None, *args: object) -> None:
        if hook is not None:
            try:
                hook(*args)
            except Exception:  # a source's hook failing must not break a viewer's joining or RTCP
                log.exception("relay %s: source hook failed", self.name)

    def _forget(self, sub: RelaySubscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            self._dropped_by_gone += sub.dropped
            self._restarts_by_gone += sub.restarts
            if not self._subs:
                self._call_hook(self.on_watched, False)

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
            "keyframe_restarts": self._restarts_by_gone + sum(s.restarts for s in self._subs),
            "overflows": self.overflows,
        }
