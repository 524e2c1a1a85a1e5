"""Fan-out of one source's audio packets to many listeners, and the track that sends them.

Audio needs no keyframe logic: every packet decodes on its own (G.711, Opus, AAC with its
config). Each listener has a bounded queue; when it is full the OLDEST packet is dropped and
counted (a listener that falls behind hears a short gap, then live audio, never a growing delay).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from fusionhub.media.packets import AudioFormat, AudioPacket

log = logging.getLogger(__name__)

AUDIO_QUEUE_PACKETS = 50  # 1 s of 20 ms packets per listener
MAX_STEP_S = 5  # a longer gap between packets is a clock jump, not a pause


class AudioSubscription:
    """One listener's bounded queue on an AudioRelay; read it with `await get()`."""

    def __init__(self, relay: AudioRelay, capacity: int) -> None:
        self._relay = relay
        self._queue: deque[AudioPacket] = deque(maxlen=capacity)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        """True once unsubscribed or the relay closed."""
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)

    async def get(self) -> AudioPacket | None:
        """The next packet; None once the subscription is closed."""
        while not self._queue:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def close(self) -> None:
        """Stop listening (idempotent); a pending `get()` returns None."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._relay._forget(self)
        self._wake()

    def _offer(self, packet: AudioPacket) -> None:
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest on append
        self._queue.append(packet)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class AudioRelay:
    """Per-source audio fan-out (an AudioSink); remembers the latest format it carried."""

    def __init__(self, name: str, *, queue_packets: int = AUDIO_QUEUE_PACKETS) -> None:
        self.name = name
        self._queue_packets = queue_packets
        self._subs: set[AudioSubscription] = set()
        self._closed = False
        self.format: AudioFormat | None = None
        self.packets_in = 0

    def on_audio(self, packet: AudioPacket) -> None:
        """Take one packet and hand it to every listener (on the loop thread, never blocks)."""
        if self._closed:
            return
        self.packets_in += 1
        self.format = packet.format
        for sub in list(self._subs):
            sub._offer(packet)

    def subscribe(self) -> AudioSubscription:
        """A new listener, starting with the next packet."""
        if self._closed:
            raise RuntimeError(f"audio relay {self.name} is closed")
        sub = AudioSubscription(self, self._queue_packets)
        self._subs.add(sub)
        return sub

    def close(self) -> None:
        """Close every subscription and refuse new ones (idempotent)."""
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    def _forget(self, sub: AudioSubscription) -> None:
        self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        """Listeners currently subscribed."""
        return len(self._subs)

    def stats(self) -> dict[str, object]:
        """Counters for monitoring."""
        fmt = self.format
        return {
            "codec": fmt.codec if fmt else None,
            "sample_rate": fmt.sample_rate if fmt else None,
            "packets_in": self.packets_in,
            "listeners": len(self._subs),
            "dropped": sum(s.dropped for s in self._subs),
        }


class AudioRelayTrack(MediaStreamTrack):
    """An audio track whose `recv()` hands out a relay's packets as `av.Packet` (no transcoding).

    aiortc's sender packs an `av.Packet` with the negotiated codec's `pack()` (PCMA/PCMU/Opus
    encoders all have one), so the relay's codec must be the negotiated one. pts are rebased per
    listener to start at 0 on the packets' own clock.
    """

    kind = "audio"

    def __init__(self, relay: AudioRelay) -> None:
        super().__init__()
        self._relay = relay
        self._sub: AudioSubscription | None = None
        self._last_src: int | None = None
        self._last_out = 0
        self._step = 160
        self.packets_sent = 0

    async def recv(self) -> av.Packet:
        """The next packet for the sender."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._sub is None:
            self._sub = self._relay.subscribe()
        item = await self._sub.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        rate = item.format.sample_rate
        if self._last_src is None:
            out = 0
        else:
            step = item.pts - self._last_src
            if 0 < step <= MAX_STEP_S * rate:
                self._step = step
            out = self._last_out + self._step
        self._last_src, self._last_out = item.pts, out
        packet = av.Packet(item.data)
        packet.pts = out
        packet.dts = out
        packet.time_base = Fraction(1, rate)
        self.packets_sent += 1
        return packet

    def stop(self) -> None:
        """End the track and give its subscription back (idempotent)."""
        super().stop()
        if self._sub is not None:
            self._sub.close()

    @property
    def dropped(self) -> int:
        """Packets this listener missed because it could not keep up."""
        return self._sub.dropped if self._sub is not None else 0
