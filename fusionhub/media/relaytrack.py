"""RelayTrack: one viewer's video track, fed from a camera's PacketRelay without transcoding.

What a viewer sees, in order:
- on joining, the cached GOP from its keyframe, replayed with 1 ms RTP timestamp spacing: the
  first picture is decodable at once and the viewer is at the live edge a few ms later
  (instead of waiting up to a GOP for the next keyframe, or watching the GOP in slow motion);
- then the live packets, their source timestamps rebased to this viewer's clock;
- on a keyframe request (PLI/FIR, after a loss it could not repair), the cached GOP again: a
  correct picture within a round trip, then live, never a smeared one. Requests are answered
  at most once per `keyframe_interval_s`; without a cached GOP it resumes at the next keyframe;
- after a camera outage the RTP clock jumps by the real time that passed, so the viewer's
  jitter buffer does not mistake the first new frames for late ones.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from fusionhub.media.relay import PacketRelay, RelaySubscription
from fusionhub.media.rtpsend import RtpFrame, h264_payloads

CLOCK_RATE = 90_000
BACKLOG_STEP = 90  # 1 ms on the 90 kHz clock between replayed GOP packets (distinct RTP timestamps)
NOMINAL_STEP = 3_000  # 1/30 s: used when the source clock jumps (source replaced, clock reset)
MAX_STEP = 5 * CLOCK_RATE  # a gap longer than 5 s is a clock jump, not a real pause
WALL_GAP = CLOCK_RATE  # real time exceeding the media step by more than 1 s: an outage


class RelayTrack(MediaStreamTrack):
    """A video track whose `recv()` hands out the relay's packets as RtpFrames (see rtpsend).

    It subscribes on the first `recv()`, i.e. when the sender starts after DTLS is up, so the
    viewer starts from the freshest cached keyframe instead of a queue filled during ICE.
    """

    kind = "video"

    def __init__(self, relay: PacketRelay, *, keyframe_interval_s: float = 1.0) -> None:
        super().__init__()
        self._relay = relay
        self._sub: RelaySubscription | None = None
        self._keyframe_interval_s = keyframe_interval_s
        self._last_src: int | None = None
        self._last_out = 0
        self._last_wall = 0.0
        self._last_restart = float("-inf")
        self.packets_sent = 0
        self.keyframe_requests = 0  # PLI/FIR received from the viewer
        self.first_packet_at: float | None = None  # time.monotonic() of the first packet handed out

    async def recv(self) -> RtpFrame:  # type: ignore[override]  # the passthrough sender packs RtpFrames
        """The next access unit for the sender: shared RTP payloads, this viewer's timestamp."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._sub is None:
            self._sub = self._relay.subscribe()
        item = await self._sub.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        src = item.packet
        now = time.monotonic()
        if self._last_src is None:
            out = 0
        elif item.backlog:
            out = self._last_out + BACKLOG_STEP
            # a replayed GOP is a burst: let the other viewers' senders run between its frames
            await asyncio.sleep(0)
        else:
            step = src.pts - self._last_src
            if not 0 < step <= MAX_STEP:
                step = NOMINAL_STEP
            wall = round((now - self._last_wall) * CLOCK_RATE)
            if wall - step > WALL_GAP:
                step = wall  # the camera was away: keep the RTP clock in step with real time
            out = self._last_out + step
        self._last_src, self._last_out, self._last_wall = src.pts, out, now
        payloads = cast(list[bytes] | None, item.memo.value)
        if payloads is None:
            payloads = h264_payloads(src.data)  # once per packet, whatever the number of viewers
            item.memo.value = payloads
        self.packets_sent += 1
        if self.first_packet_at is None:
            self.first_packet_at = now
        return RtpFrame(payloads, out, src.is_keyframe)

    def request_keyframe(self) -> None:
        """The viewer sent PLI or FIR: replay the cached GOP (rate-limited), see the module docstring."""
        self.keyframe_requests += 1
        now = time.monotonic()
        if self._sub is None or now - self._last_restart < self._keyframe_interval_s:
            return
        self._last_restart = now
        self._sub.restart_at_keyframe()

    def stop(self) -> None:
        """End the track and give its relay subscription back (idempotent)."""
        super().stop()
        if self._sub is not None:
            self._sub.close()

    @property
    def dropped(self) -> int:
        """Packets this viewer missed because it could not keep up or waited for a keyframe."""
        return self._sub.dropped if self._sub is not None else 0

    @property
    def restarts(self) -> int:
        """Keyframe requests answered by replaying the cached GOP."""
        return self._sub.restarts if self._sub is not None else 0
