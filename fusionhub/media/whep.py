"""One WHEP viewer: an aiortc peer connection that sends a camera's H.264 packets as received.

The viewer's RTCRtpSender gets a PassthroughEncoder (see rtpsend): it sends the RTP payloads
the relay cut once per packet, so the hub never decodes, encodes or re-packetizes video per
viewer. Two details make that correct:
- the transceiver is created `sendonly` with H.264 as its only codec preference BEFORE the
  offer is applied, otherwise aiortc picks VP8 and would label H.264 payloads as VP8;
- each viewer's timestamps are rebased to start near 0, and the cached GOP a late joiner gets
  is replayed with 1 ms spacing (see relaytrack) so the viewer decodes up to the live edge at
  once; its keyframe requests are answered from the same cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription

from fusionhub.media.admission import SetupSlot
from fusionhub.media.audio import AudioRelayTrack
from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported, MediaError
from fusionhub.media.ice import rtc_configuration
from fusionhub.media.relay import PacketRelay
from fusionhub.media.relaytrack import RelayTrack
from fusionhub.media.rtpsend import PassthroughEncoder, install_passthrough, sender_encoder
from fusionhub.media.whepaudio import AudioOutputs, attach_audio
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

__all__ = ["InvalidOffer", "RelayTrack", "WhepSession", "check_offer", "h264_preferences"]


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
        audio: AudioOutputs | None = None,
        setup_slot: SetupSlot | None = None,
    ) -> None:
        self.session_id = session_id
        # an admission place, held until the viewer is connected (or gone): see admission.py
        self._setup_slot = setup_slot
        self.camera_id = camera_id
        self._config = config
        self._on_closed = on_closed
        self._track = RelayTrack(relay, keyframe_interval_s=config.keyframe_request_interval_s)
        self._pc = RTCPeerConnection(rtc_configuration(config))
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._watchdog: asyncio.Task[None] | None = None
        self._self_close: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self.created_at = time.monotonic()
        self.connected_at: float | None = None
        self.codec: str | None = None  # negotiated codec, e.g. "H264 profile-level-id=42e01f"
        self._audio = audio
        self._audio_track: AudioRelayTrack | None = None
        self.audio_codec: str | None = None  # e.g. "PCMA", "opus (transcoded)"; None: no audio

    @property
    def track(self) -> RelayTrack:
        """The relay track feeding this viewer."""
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
        install_passthrough(transceiver.sender, self._track.request_keyframe)
        attached = attach_audio(self._pc, offer_sdp, self._audio) if self._audio is not None else None
        if attached is not None:
            self._audio_track, self.audio_codec = attached
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
        if state in ("connected", "failed", "closed") and self._setup_slot is not None:
            self._setup_slot.release()
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
            await cancel_and_wait(*(task for task in (self._watchdog, self._self_close) if task is not current))
            self._track.stop()
            if self._audio_track is not None:
                self._audio_track.stop()
            try:
                await self._pc.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("whep %s: error closing the peer connection", self.session_id)
        finally:
            if self._setup_slot is not None:
                self._setup_slot.release()
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
            "audio_codec": self.audio_codec,
            "packets_sent": self._track.packets_sent,
            "dropped": self._track.dropped,
            "keyframe_requests": self._track.keyframe_requests,
            "keyframe_restarts": self._track.restarts,
            "transcoding": self.transcoding,
        }

    @property
    def transcoding(self) -> bool:
        """True if this viewer's video sender has a real encoder (it never should: see rtpsend)."""
        for t in self._pc.getTransceivers():
            if t.kind == "video":
                encoder = sender_encoder(t.sender)
                if encoder is not None and not isinstance(encoder, PassthroughEncoder):
                    return True
        return False
