"""One WHEP viewer: an aiortc peer connection that sends a camera's H.264 packets as received.

aiortc's RTCRtpSender packetizes `av.Packet` objects from a track without encoding them
(`RTCRtpSender._next_encoded_frame` → `H264Encoder.pack`), so the hub never decodes or encodes
video for viewers. Two details make that correct:
- the transceiver is created `sendonly` with H.264 as its only codec preference BEFORE the
  offer is applied, otherwise aiortc picks VP8 and would label H.264 payloads as VP8;
- each viewer's timestamps are rebased to start near 0, and the cached GOP a late joiner gets
  is replayed with 1 ms spacing so the viewer decodes up to the live edge at once instead of
  watching the GOP in slow motion one GOP behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported, MediaError
from fusionhub.media.ice import rtc_configuration
from fusionhub.media.relay import PacketRelay, RelaySubscription

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90_000)
BACKLOG_STEP = 90  # 1 ms on the 90 kHz clock between replayed GOP packets (distinct RTP timestamps)
NOMINAL_STEP = 3_000  # 1/30 s: used when the source clock jumps (source replaced, clock reset)
MAX_STEP = 5 * 90_000  # a gap longer than 5 s is a clock jump, not a real pause


class InvalidOffer(MediaError, ValueError):
    """The body is not an SDP offer this gateway can answer (unparsable, or no video section)."""


def h264_preferences() -> list[RTCRtpCodecCapability]:
    """aiortc's H.264 codecs (constrained baseline first, as every browser supports it) plus RTX."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
    h264.sort(key=lambda c: str(c.parameters.get("profile-level-id", "")).lower() != "42e01f")
    rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    return h264 + rtx


def check_offer(offer_sdp: str) -> None:
    """Raise InvalidOffer or CodecUnsupported unless the offer's first video section accepts our H.264."""
    try:
        desc = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise InvalidOffer("the SDP offer cannot be parsed") from exc
    video = [m for m in desc.media if m.kind == "video"]
    if not video:
        raise InvalidOffer("the SDP offer has no video section")
    local = [c for c in CODECS["video"] if c.mimeType.lower() == "video/h264"]
    if not find_common_codecs(local, video[0].rtp.codecs):
        offered = sorted({c.mimeType.split("/")[-1] for c in video[0].rtp.codecs if c.name != "rtx"})
        raise CodecUnsupported(
            f"the viewer does not accept H.264 (packetization-mode 1); it offered {', '.join(offered) or 'nothing'}"
        )


class RelayTrack(MediaStreamTrack):
    """A video track whose `recv()` hands out the relay's packets as `av.Packet` (no transcoding).

    It subscribes on the first `recv()`, i.e. when the sender starts after DTLS is up, so the
    viewer starts from the freshest cached keyframe instead of a queue filled during ICE.
    """

    kind = "video"

    def __init__(self, relay: PacketRelay) -> None:
        super().__init__()
        self._relay = relay
        self._sub: RelaySubscription | None = None
        self._last_src: int | None = None
        self._last_out = 0
        self.packets_sent = 0
        self.first_packet_at: float | None = None  # time.monotonic() of the first packet handed out

    async def recv(self) -> av.Packet:
        """The next packet for the sender, pts rebased for this viewer."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._sub is None:
            self._sub = self._relay.subscribe()
        item = await self._sub.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        src = item.packet
        if self._last_src is None:
            out = 0
        elif item.backlog:
            out = self._last_out + BACKLOG_STEP
        else:
            step = src.pts - self._last_src
            out = self._last_out + (step if 0 < step <= MAX_STEP else NOMINAL_STEP)
        self._last_src, self._last_out = src.pts, out
        packet = av.Packet(src.data)
        packet.pts = out
        packet.dts = out
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = src.is_keyframe
        self.packets_sent += 1
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        return packet

    def stop(self) -> None:
        """End the track and give its relay subscription back (idempotent)."""
        super().stop()
        if self._sub is not None:
            self._sub.close()

    @property
    def dropped(self) -> int:
        """Packets this viewer missed because it could not keep up or waited for a keyframe."""
        return self._sub.dropped if self._sub is not None else 0


class WhepSession:
    """One viewer of one camera: answer its offer, send the relay's packets, clean up on close."""

    def __init__(
        self,
        session_id: str,
        camera_id: int,
        relay: PacketRelay,
        config: MediaConfig,
        *,
        on_closed: Callable[[WhepSession], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.camera_id = camera_id
        self._config = config
        self._on_closed = on_closed
        self._track = RelayTrack(relay)
        self._pc = RTCPeerConnection(rtc_configuration(config))
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._watchdog: asyncio.Task[None] | None = None
        self._self_close: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self.created_at = time.monotonic()
        self.connected_at: float | None = None
        self.codec: str | None = None  # negotiated codec, e.g. "H264 profile-level-id=42e01f"

    @property
    def track(self) -> RelayTrack:
        """The relay track feeding this viewer (tests check it hands out av.Packet objects)."""
        return self._track

    @property
    def peer_connection(self) -> RTCPeerConnection:
        """The aiortc peer connection (for diagnostics)."""
        return self._pc

    @property
    def connection_state(self) -> str:
        """aiortc's connection state: new, connecting, connected, failed or closed."""
        return str(self._pc.connectionState)

    @property
    def closed(self) -> bool:
        """True once close() has started."""
        return self._closing

    async def answer(self, offer_sdp: str) -> str:
        """Apply the viewer's offer and return the answer SDP with every ICE candidate in it.

        Raises InvalidOffer, CodecUnsupported, or TimeoutError past `offer_timeout_s`.
        """
        check_offer(offer_sdp)
        transceiver = self._pc.addTransceiver(self._track, direction="sendonly")
        transceiver.setCodecPreferences(h264_preferences())
        async with asyncio.timeout(self._config.offer_timeout_s):
            try:
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise InvalidOffer(f"the offer cannot be applied: {exc}") from exc
            answer = await self._pc.createAnswer()
            # aiortc gathers every candidate inside setLocalDescription: WHEP here has no trickle,
            # so the answer must carry them all
            await self._pc.setLocalDescription(answer)
        local = self._pc.localDescription
        self.codec = self._negotiated_codec(local.sdp, transceiver.mid)
        if self.codec is None or not self.codec.startswith("H264"):
            raise CodecUnsupported(f"negotiation ended on {self.codec or 'no codec'}, not H.264")
        self._watchdog = asyncio.create_task(self._connect_watchdog(), name=f"whep-{self.session_id}-watchdog")
        log.debug("whep %s: camera %s answered with %s", self.session_id, self.camera_id, self.codec)
        return str(local.sdp)

    @staticmethod
    def _negotiated_codec(answer_sdp: str, mid: str | None) -> str | None:
        for media in SessionDescription.parse(answer_sdp).media:
            if media.kind == "video" and media.rtp.muxId == mid and media.rtp.codecs:
                codec = media.rtp.codecs[0]
                plid = codec.parameters.get("profile-level-id")
                return f"{codec.name} profile-level-id={plid}" if plid else codec.name
        return None

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        log.debug("whep %s: connection %s", self.session_id, state)
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
        elif state in ("failed", "closed") and not self._closing and self._self_close is None:
            # the peer went away: clean up without waiting for a DELETE that may never come
            self._self_close = asyncio.create_task(self.close(), name=f"whep-{self.session_id}-close")

    async def _connect_watchdog(self) -> None:
        await asyncio.sleep(self._config.connect_timeout_s)
        if self.connected_at is None:
            log.info("whep %s: not connected after %.0f s; closing", self.session_id, self._config.connect_timeout_s)
            await self.close()

    async def close(self) -> None:
        """Close the peer connection and free the relay subscription (safe to call twice, concurrently too)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            current = asyncio.current_task()
            for task in (self._watchdog, self._self_close):
                if task is not None and task is not current and not task.done():
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
            self._track.stop()
            try:
                await self._pc.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("whep %s: error closing the peer connection", self.session_id)
        finally:
            self._closed.set()
            if self._on_closed is not None:
                self._on_closed(self)

    def stats(self) -> dict[str, object]:
        """Counters for monitoring."""
        return {
            "session_id": self.session_id,
            "camera_id": self.camera_id,
            "state": self.connection_state,
            "codec": self.codec,
            "packets_sent": self._track.packets_sent,
            "dropped": self._track.dropped,
        }
