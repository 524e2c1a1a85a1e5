"""One participant of a push-to-talk room: its peer connection, floor data channel and audio in/out.

The hub answers the participant's offer with one `sendrecv` Opus transceiver and adopts the
data channel the client opened (label "floor"). Incoming audio is tapped below aiortc's decoder
(media/rtptap.py) and handed to the room as RTP packets; outgoing audio is a ForwardTrack the
room fills with the floor holder's packets. Nothing is decoded or encoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from fusionhub.media.errors import CodecUnsupported
from fusionhub.media.intercom.config import IntercomConfig
from fusionhub.media.intercom.forward import ForwardTrack
from fusionhub.media.rtptap import tap_receiver
from fusionhub.media.whep import InvalidOffer
from fusionhub.signaling.intercom import CHANNEL_LABEL
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Participant:
    """Who joins: the user as the console vouched for it, with its floor priority."""

    user_id: int
    name: str
    role: str
    priority: int


def opus_preferences() -> list[RTCRtpCodecCapability]:
    """aiortc's Opus codec only: the hub forwards Opus and nothing else."""
    return [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]


def check_join_offer(offer_sdp: str) -> None:
    """Raise InvalidOffer/CodecUnsupported unless the offer has Opus audio and a data channel."""
    try:
        desc = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise InvalidOffer("the SDP offer cannot be parsed") from exc
    audio = [m for m in desc.media if m.kind == "audio"]
    if not audio:
        raise InvalidOffer("the SDP offer has no audio section")
    if not any(m.kind == "application" for m in desc.media):
        raise InvalidOffer("the SDP offer has no data channel; open one labelled 'floor' before the offer")
    if not any(c.mimeType.lower() == "audio/opus" for c in audio[0].rtp.codecs):
        offered = sorted({c.name for c in audio[0].rtp.codecs})
        raise CodecUnsupported(f"push-to-talk needs Opus; the offer has {', '.join(offered) or 'nothing'}")


RtpCallback = Callable[["IntercomSession", RtpPacket], None]
SessionCallback = Callable[["IntercomSession"], None]
MessageCallback = Callable[["IntercomSession", str], None]


class IntercomSession:
    """A participant's connection; the room gets its packets and messages through the callbacks."""

    def __init__(
        self,
        session_id: str,
        room_id: str,
        participant: Participant,
        config: IntercomConfig,
        rtc: RTCConfiguration,
        *,
        on_rtp: RtpCallback,
        on_open: SessionCallback,
        on_message: MessageCallback,
        on_closed: SessionCallback,
    ) -> None:
        self.id = session_id
        self.room_id = room_id
        self.participant = participant
        self._config = config
        self._on_rtp = on_rtp
        self._on_open = on_open
        self._on_message = on_message
        self._on_closed = on_closed
        self.track = ForwardTrack(config.listener_queue_packets)
        self._pc = RTCPeerConnection(rtc)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._pc.on("datachannel", self._on_datachannel)
        self._channel: RTCDataChannel | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._self_close: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self.opus_pt: int | None = None
        self.created_at = time.monotonic()
        self.connected_at: float | None = None
        self.packets_in = 0
        self.dropped_in = 0  # packets not forwarded: not the holder's, or not Opus
        self.messages_skipped = 0

    @property
    def closed(self) -> bool:
        """True once close() has started."""
        return self._closing

    @property
    def connection_state(self) -> str:
        """aiortc's connection state."""
        return str(self._pc.connectionState)

    @property
    def peer_connection(self) -> RTCPeerConnection:
        """The aiortc peer connection (diagnostics, tests)."""
        return self._pc

    def describe(self) -> dict[str, object]:
        """The participant as others see it."""
        p = self.participant
        return {"id": self.id, "user_id": p.user_id, "name": p.name, "role": p.role}

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer and return the answer with every ICE candidate in it (no trickle)."""
        check_join_offer(offer_sdp)
        transceiver = self._pc.addTransceiver(self.track, direction="sendrecv")
        transceiver.setCodecPreferences(opus_preferences())
        self._attach_receiver(transceiver)
        async with asyncio.timeout(self._config.offer_timeout_s):
            try:
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise InvalidOffer(f"the offer cannot be applied: {exc}") from exc
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        local = self._pc.localDescription
        self.opus_pt = self._negotiated_pt(local.sdp, transceiver.mid)
        if self.opus_pt is None:
            raise CodecUnsupported("negotiation did not end on Opus")
        self._watchdog = asyncio.create_task(self._connect_watchdog(), name=f"ptt-{self.id[:6]}-watchdog")
        return str(local.sdp)

    def _attach_receiver(self, transceiver: RTCRtpTransceiver) -> None:
        """Tap the incoming audio below aiortc's decoder (the benchmark's baseline decodes instead)."""
        tap_receiver(transceiver.receiver, self._tapped)

    @staticmethod
    def _negotiated_pt(answer_sdp: str, mid: str | None) -> int | None:
        for media in SessionDescription.parse(answer_sdp).media:
            if media.kind == "audio" and media.rtp.muxId == mid:
                for codec in media.rtp.codecs:
                    if codec.mimeType.lower() == "audio/opus":
                        return int(codec.payloadType) if codec.payloadType is not None else None
        return None

    def _tapped(self, packet: RtpPacket, arrival_ms: int) -> None:
        self.packets_in += 1
        if packet.payload_type != self.opus_pt or not packet.payload or self._closing:
            self.dropped_in += 1
            return
        self._on_rtp(self, packet)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CHANNEL_LABEL or self._channel is not None:
            log.debug("ptt %s: ignoring data channel %r", self.id[:6], channel.label)
            return
        self._channel = channel

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            self._on_message(self, message)

        if channel.readyState == "open":
            self._on_open(self)
        else:
            channel.on("open", lambda: self._on_open(self))

    def send(self, text: str, *, perishable: bool = False) -> bool:
        """Send a floor message; a level (perishable) is skipped when the client reads slowly.

        A client that leaves more than `channel_buffer_bytes` unread is disconnected instead of
        being buffered without limit.
        """
        channel = self._channel
        if channel is None or channel.readyState != "open" or self._closing:
            return False
        buffered = channel.bufferedAmount
        limit = self._config.channel_buffer_bytes
        if perishable and buffered > limit // 2:
            self.messages_skipped += 1
            return False
        if buffered > limit:
            log.warning("ptt %s: %d bytes of floor messages unread; disconnecting", self.id[:6], buffered)
            self._close_soon()
            return False
        channel.send(text)
        return True

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        log.debug("ptt %s: connection %s", self.id[:6], state)
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
        elif state in ("failed", "closed"):
            self._close_soon()

    def _close_soon(self) -> None:
        if not self._closing and self._self_close is None:
            self._self_close = asyncio.create_task(self.close(), name=f"ptt-{self.id[:6]}-close")

    async def _connect_watchdog(self) -> None:
        await asyncio.sleep(self._config.connect_timeout_s)
        if self.connected_at is None:
            log.info("ptt %s: not connected after %.0f s; closing", self.id[:6], self._config.connect_timeout_s)
            await self.close()

    async def close(self) -> None:
        """Close the peer connection and leave the room (safe to call twice, concurrently too)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            current = asyncio.current_task()
            await cancel_and_wait(*(task for task in (self._watchdog, self._self_close) if task is not current))
            self.track.stop()
            try:
                await self._pc.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ptt %s: error closing the peer connection", self.id[:6])
        finally:
            self._closed.set()
            self._on_closed(self)

    def stats(self) -> dict[str, object]:
        """Counters for monitoring."""
        return {
            **self.describe(),
            "state": self.connection_state,
            "packets_in": self.packets_in,
            "dropped_in": self.dropped_in,
            "packets_out": self.track.packets_sent,
            "dropped_out": self.track.dropped,
            "messages_skipped": self.messages_skipped,
        }
