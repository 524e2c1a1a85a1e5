"""One WHIP publisher's peer connection: H.264 and Opus received WITHOUT decoding.

aiortc's RTCRtpReceiver always decodes: `_handle_rtp_packet` depayloads each RTP packet,
reassembles frames in its JitterBuffer (`self.__jitter_buffer.add(packet)` returns
`(pli_flag, JitterFrame | None)`) and queues complete frames to a decoder thread. We replace
that jitter buffer (private attribute `_RTCRtpReceiver__jitter_buffer`, aiortc 1.16.0, pinned
in requirements.txt) with a subclass that hands each complete encoded frame (H.264 Annex-B
with 4-byte start codes, or one Opus/G.711 frame) and its RTP timestamp to us and returns
None, so the decoder thread never gets work. NACK, RTCP and PLI handling stay aiortc's.
Keyframes are requested with the receiver's `_send_rtcp_pli` (browsers send them only on
request): periodically, so late viewers, the sampler and clips always find a recent one.
If aiortc changes either private name, `install_tap` raises MediaError at the first publish
(tests/media/test_whip.py catches that on upgrade).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.rtp import RtpPacket
from aiortc.sdp import MediaDescription, SessionDescription

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported, MediaError
from fusionhub.media.ice import rtc_configuration
from fusionhub.media.packets import AudioFormat
from fusionhub.media.whep import InvalidOffer, h264_preferences
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FrameCallback = Callable[[bytes, int], None]  # (encoded frame, RTP timestamp), on the loop thread
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_AUDIO_MIMES = ("audio/opus", "audio/PCMA", "audio/PCMU")


class _TapJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, but complete frames go to `on_frame` instead of the decoder."""

    def __init__(self, capacity: int, prefetch: int, is_video: bool, on_frame: FrameCallback) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=is_video)
        self._on_frame = on_frame

    def add(self, packet: RtpPacket) -> tuple[bool, None]:  # type: ignore[override]
        pli, frame = super().add(packet)
        if frame is not None:
            self._on_frame(frame.data, frame.timestamp)
        return pli, None


def install_tap(receiver: RTCRtpReceiver, kind: str, on_frame: FrameCallback) -> None:
    """Make `receiver` hand encoded frames to `on_frame` and decode nothing (before media flows)."""
    if not hasattr(receiver, _JITTER_ATTR) or not hasattr(receiver, "_send_rtcp_pli"):
        raise MediaError("this aiortc version has no receiver jitter buffer to tap; pin aiortc 1.16.0")
    if kind == "video":
        tap = _TapJitterBuffer(512, 0, True, on_frame)  # aiortc's own video settings
    else:
        tap = _TapJitterBuffer(16, 4, False, on_frame)
    setattr(receiver, _JITTER_ATTR, tap)


def _sending(offer: SessionDescription, kind: str) -> MediaDescription | None:
    for media in offer.media:
        if media.kind == kind and media.direction in ("sendonly", "sendrecv", None):
            return media
    return None


def _local(mime: str, kind: str) -> list:  # type: ignore[type-arg]
    return [c for c in CODECS[kind] if c.mimeType.lower() == mime.lower()]


def check_publish_offer(offer_sdp: str) -> tuple[SessionDescription, bool]:
    """The parsed offer and whether it sends audio we take; InvalidOffer/CodecUnsupported otherwise."""
    try:
        desc = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise InvalidOffer("the SDP offer cannot be parsed") from exc
    video = _sending(desc, "video")
    if video is None:
        raise InvalidOffer("the SDP offer sends no video")
    if not find_common_codecs(_local("video/H264", "video"), video.rtp.codecs):
        offered = sorted({c.name for c in video.rtp.codecs if c.name != "rtx"})
        raise CodecUnsupported(f"publish H.264 (packetization-mode 1); the offer has {', '.join(offered) or 'nothing'}")
    audio = _sending(desc, "audio")
    has_audio = audio is not None and any(find_common_codecs(_local(m, "audio"), audio.rtp.codecs) for m in _AUDIO_MIMES)
    return desc, has_audio


def _audio_format(answer_sdp: str, mid: str | None) -> AudioFormat | None:
    for media in SessionDescription.parse(answer_sdp).media:
        if media.kind == "audio" and media.rtp.muxId == mid and media.rtp.codecs:
            codec = media.rtp.codecs[0]
            name = codec.name.lower()
            if name in ("opus", "pcma", "pcmu"):
                return AudioFormat(codec=name, sample_rate=codec.clockRate, channels=codec.channels or 1)
    return None


class WhipSession:
    """Answer a publisher's offer; encoded frames go to `on_video` / `on_audio` as they arrive."""

    def __init__(
        self,
        session_id: str,
        name: str,
        config: MediaConfig,
        *,
        on_video: FrameCallback,
        on_audio: FrameCallback,
        on_closed: Callable[[WhipSession], None],
    ) -> None:
        self.session_id = session_id
        self.name = name
        self._config = config
        self._on_video = on_video
        self._on_audio = on_audio
        self._on_closed = on_closed
        self._pc = RTCPeerConnection(rtc_configuration(config))
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._video_receiver: RTCRtpReceiver | None = None
        self._media_ssrc: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._self_close: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self.audio_format: AudioFormat | None = None
        self.connected_at: float | None = None
        self.last_frame_at: float | None = None
        self.keyframe_requests = 0

    @property
    def connection_state(self) -> str:
        """aiortc's connection state: new, connecting, connected, failed or closed."""
        return str(self._pc.connectionState)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the publisher's offer; the answer SDP (H.264 video, Opus or G.711 audio, all candidates)."""
        _, has_audio = check_publish_offer(offer_sdp)
        video = self._pc.addTransceiver("video", direction="recvonly")
        video.setCodecPreferences(h264_preferences())
        audio = None
        if has_audio:
            audio = self._pc.addTransceiver("audio", direction="recvonly")
            caps = RTCRtpSender.getCapabilities("audio").codecs
            audio.setCodecPreferences([c for m in _AUDIO_MIMES for c in caps if c.mimeType.lower() == m.lower()])
        async with asyncio.timeout(self._config.offer_timeout_s):
            try:
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise InvalidOffer(f"the offer cannot be applied: {exc}") from exc
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        answer = str(self._pc.localDescription.sdp)
        install_tap(video.receiver, "video", self._video_frame)
        self._video_receiver = video.receiver
        if audio is not None:
            self.audio_format = _audio_format(answer, audio.mid)
            if self.audio_format is not None:
                install_tap(audio.receiver, "audio", self._audio_frame)
        self._tasks.append(asyncio.create_task(self._keyframes(), name=f"whip-{self.session_id[:6]}-keyframes"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name=f"whip-{self.session_id[:6]}-watchdog"))
        return answer

    def _video_frame(self, data: bytes, timestamp: int) -> None:
        self.last_frame_at = time.monotonic()
        self._on_video(data, timestamp)

    def _audio_frame(self, data: bytes, timestamp: int) -> None:
        self.last_frame_at = time.monotonic()
        self._on_audio(data, timestamp)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe now (RTCP PLI), e.g. for a new viewer with nothing cached."""
        receiver = self._video_receiver
        if receiver is None or self.connected_at is None or self._closing:
            return
        ssrcs = [s.source for s in receiver.getSynchronizationSources()]
        if not ssrcs:
            return
        self.keyframe_requests += 1
        task = asyncio.create_task(receiver._send_rtcp_pli(ssrcs[0]), name=f"whip-{self.session_id[:6]}-pli")
        self._tasks = [t for t in self._tasks if not t.done()] + [task]

    async def _keyframes(self) -> None:
        while True:
            await asyncio.sleep(self._config.whip.keyframe_interval_s)
            self.request_keyframe()

    async def _watchdog(self) -> None:
        """End a publisher that never connects, or that stops sending."""
        idle = self._config.whip.idle_timeout_s
        started = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, idle / 4))
            now = time.monotonic()
            if self.connected_at is None:
                quiet, limit = now - started, self._config.connect_timeout_s
            else:
                quiet, limit = now - (self.last_frame_at or self.connected_at), idle
            if quiet > limit:
                log.info("whip %s (%s): nothing received for %.0f s; ending it", self.session_id[:6], self.name, quiet)
                self._self_close = asyncio.create_task(self.close(), name=f"whip-{self.session_id[:6]}-close")
                return

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        log.debug("whip %s: connection %s", self.session_id[:6], state)
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            self.request_keyframe()
        elif state in ("failed", "closed") and not self._closing and self._self_close is None:
            self._self_close = asyncio.create_task(self.close(), name=f"whip-{self.session_id[:6]}-close")

    async def close(self) -> None:
        """Close the peer connection (safe to call twice, concurrently too)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            current = asyncio.current_task()
            # a publisher that went away makes its tasks fail: logged at debug level
            await cancel_and_wait(*(t for t in [*self._tasks, self._self_close] if t is not current), quiet=True)
            try:
                await self._pc.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("whip %s: error closing the peer connection", self.session_id[:6])
        finally:
            self._closed.set()
            self._on_closed(self)
