"""Conference terminals over SIP: the hub dials a terminal and relays its H.264 + audio RTP as received.

`SipAgent` owns the hub's one SIP UDP socket (aiosipua: INVITE, ACK, BYE and the terminal's BYE);
`SipSession` is one dialled terminal, shaped like a WhipSession so the PublisherRegistry treats a
terminal as a publisher: its packets feed the same SourceOutputs (WHEP viewers, clips, analytics
samples) and nothing is decoded or encoded on the way. The hub offers `a=sendrecv`: H.264
(packetization-mode 1) on the video line, Opus, PCMU, PCMA and G.722 on the audio line.
H.264 RTP (single NAL, STAP-A, FU-A) is reassembled into Annex-B access units with aiortc's
depayloader; an access unit with a sequence gap is dropped and a keyframe requested. Keyframe
requests become RTCP PLI to the terminal's RTCP port (RTP port + 1) and, when they are needed now
(a gap, a viewer with nothing cached), SIP INFO picture_fast_update too (RFC 5168; at most one a
second), which many hardware terminals understand where they ignore RTCP feedback.
The other way, `send_video(relay)` / `send_audio(relay)` send a hub source's H.264 and audio
(when in the terminal's audio codec: never transcoded here) (e.g. the commander's camera in a
call) to the terminal, cut into RTP payloads once per packet by the relay (no encoding); the
terminal's PLI/FIR or INFO picture_fast_update replays the relay's cached GOP, and its receiver
reports are counted.
Loopback and LAN terminals only: no NAT traversal, no SRTP (terminals on the operations network).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiosipua import IncomingCall, parse_sdp
from aiosipua.sdp import SdpMessage

from fusionhub.media.audio import AudioRelay, AudioSubscription
from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import MediaError
from fusionhub.media.packets import AudioFormat
from fusionhub.media.relay import PacketRelay
from fusionhub.media.relaytrack import RelayTrack
from fusionhub.media.sipagent import SipAgent
from fusionhub.media.siprtp import FrameCallback, H264Assembler, Udp, bind_pair
from fusionhub.media.sipsdp import VIDEO_PT, answer_sdp, audio_format, h264_pt, offer_sdp, serialize

log = logging.getLogger(__name__)

INFO_MIN_INTERVAL_S = 1.0  # SIP INFO keyframe requests to one terminal at most this often



class SipError(MediaError):
    """A SIP call could not be set up (refused, no answer, no usable media)."""


class InvalidSipUri(SipError, ValueError):
    """The SIP URI is not sip:user@host[:port] with a numeric IPv4 host."""


def parse_sip_uri(uri: str) -> tuple[str, int]:
    """(host, port) of `sip:user@host[:port]`; InvalidSipUri otherwise (numeric IPv4 hosts only: no DNS)."""
    if not uri.startswith("sip:") or "@" not in uri or len(uri) > 256:
        raise InvalidSipUri("give a SIP URI like sip:terminal@10.0.0.5:5060")
    hostport = uri[4:].split("@", 1)[1].split(";", 1)[0]
    host, _, port = hostport.partition(":")
    parts = host.split(".")
    if len(parts) != 4 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise InvalidSipUri("the terminal's host must be a numeric IPv4 address")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise InvalidSipUri("the port must be 1-65535")
    return host, int(port or 5060)


class SipSession:
    """One dialled terminal, shaped like WhipSession for the PublisherRegistry.

    `answer(sip_uri)` dials (INVITE with our recvonly offer), waits for the 200 OK and returns the
    terminal's SDP answer; frames then go to `on_video` / `on_audio` as they arrive.
    """

    def __init__(
        self,
        session_id: str,
        name: str,
        config: MediaConfig,
        *,
        agent: SipAgent,
        on_video: FrameCallback,
        on_audio: FrameCallback,
        on_closed: Callable[[SipSession], None],
        answer_timeout_s: float = 30.0,
        incoming: IncomingCall | None = None,
    ) -> None:
        self.session_id = session_id
        self.name = name
        self._config = config
        self._agent = agent
        self._on_video = on_video
        self._on_audio = on_audio
        self._on_closed = on_closed
        self._answer_timeout_s = answer_timeout_s
        self._call: Any = None  # OutgoingCall (we dialled) or IncomingCall (it called us)
        self._incoming = incoming
        self._video_pt = VIDEO_PT
        self._sockets: list[Udp] = []
        self._video_rtcp: Udp | None = None
        self._video_rtp: Udp | None = None
        self._remote_video: tuple[str, int] | None = None
        self._remote_video_rtcp: tuple[str, int] | None = None
        self._send_task: asyncio.Task[None] | None = None
        self._send_track: RelayTrack | None = None
        self._send_ssrc = secrets.randbits(32)
        self.sent_packets = 0
        self.remote_keyframe_requests = 0  # PLI/FIR from the terminal about what we send
        self.remote_received_seq: int | None = None  # highest sequence number its receiver reports name
        self._audio_rtp: Udp | None = None
        self._remote_audio: tuple[str, int] | None = None
        self._audio_send_task: asyncio.Task[None] | None = None
        self._audio_send_ssrc = secrets.randbits(32)
        self.sent_audio_packets = 0
        self.remote_received_audio_seq: int | None = None
        self._video_ssrc: int | None = None
        self._audio_pt: int | None = None
        self._assembler = H264Assembler(self._video_frame, self.request_keyframe)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = asyncio.Event()
        self._state = "new"
        self.audio_format: AudioFormat | None = None
        self.connected_at: float | None = None
        self.last_frame_at: float | None = None
        self.keyframe_requests = 0
        self.info_keyframe_requests = 0  # of those, also sent as SIP INFO
        self._last_info = -INFO_MIN_INTERVAL_S
        self.packets = 0

    @property
    def connection_state(self) -> str:
        """new, connecting, connected, failed or closed (as WhipSession reports it)."""
        return self._state

    async def _bind(self) -> tuple[int, int]:
        host = self._agent.host
        audio_rtp, audio_rtcp, audio_port = await bind_pair(host, self._audio_packet, self._rtcp_packet)
        video_rtp, video_rtcp, video_port = await bind_pair(host, self._video_packet, self._rtcp_packet)
        self._sockets = [audio_rtp, audio_rtcp, video_rtp, video_rtcp]
        self._audio_rtp = audio_rtp
        self._video_rtp = video_rtp
        self._video_rtcp = video_rtcp
        return audio_port, video_port

    async def answer(self, sip_uri: str) -> str:
        """Dial `sip_uri` (or, for a terminal that called us, accept its call); the SDP of the
        terminal's side. SipError when refused, unanswered, or without H.264."""
        if self._incoming is not None:
            return await self._accept(self._incoming)
        remote = parse_sip_uri(sip_uri)
        await self._agent.start()
        audio_port, video_port = await self._bind()
        uac = self._agent.uac
        assert uac is not None
        self._state = "connecting"
        host = self._agent.host
        own = f"sip:fusionhub@{host}:{self._agent.address[1]}"
        self._call = uac.send_invite(own, sip_uri, remote, parse_sdp(offer_sdp(host, audio_port, video_port)), user_agent="FusionHub")
        try:
            await self._call.wait_answered(timeout=self._answer_timeout_s)
        except TimeoutError as exc:
            raise SipError(f"the terminal did not answer within {self._answer_timeout_s:.0f} s") from exc
        except RuntimeError as exc:  # aiosipua: "Call rejected: <code> <reason>"
            raise SipError(f"the terminal refused the call ({exc})") from exc
        answer: SdpMessage | None = self._call.sdp_answer
        if answer is None or answer.video is None or answer.video.port == 0:
            raise SipError("the terminal answered without video")
        pt = h264_pt(answer)
        if pt is None:
            raise SipError("the terminal does not send H.264")
        self._media_up(answer, pt, answer)
        return serialize(answer)

    async def _accept(self, call: IncomingCall) -> str:
        offer = call.sdp_offer
        pt = h264_pt(offer) if offer is not None and offer.video is not None and offer.video.port else None
        if offer is None or pt is None:
            call.reject(488, "Not Acceptable Here")
            raise SipError("the terminal's call offers no H.264 video")
        audio_port, video_port = await self._bind()
        reply = parse_sdp(answer_sdp(self._agent.host, offer, pt, audio_port, video_port))
        self._call = call
        self._state = "connecting"
        call.accept(reply)
        self._media_up(offer, pt, reply)
        return serialize(offer)

    def _media_up(self, remote: SdpMessage, video_pt: int, negotiated: SdpMessage) -> None:
        """Both sides agreed (`negotiated` is the answer): note the terminal's addresses, start the timers."""
        self._video_pt = video_pt
        video_addr = remote.video_rtp_address
        if video_addr is not None:
            self._remote_video = video_addr
            self._remote_video_rtcp = (video_addr[0], video_addr[1] + 1)
        self._remote_audio = remote.rtp_address
        self.audio_format, self._audio_pt = audio_format(negotiated)
        self._agent.on_bye(self._call.call_id, self._remote_hangup)
        self._agent.on_keyframe_request(self._call.call_id, self._remote_keyframe_request)
        self._state = "connected"
        self.connected_at = time.monotonic()
        self._tasks.append(asyncio.create_task(self._keyframes(), name=f"sip-{self.session_id[:6]}-keyframes"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name=f"sip-{self.session_id[:6]}-watchdog"))
        log.info("terminal %s answered (audio %s)", self.name, self.audio_format.codec if self.audio_format else "none")

    def _video_packet(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            return
        if packet.payload_type != self._video_pt:
            return
        self.packets += 1
        self._video_ssrc = packet.ssrc
        self._assembler.add(packet)

    def _video_frame(self, data: bytes, timestamp: int) -> None:
        self.last_frame_at = time.monotonic()
        self._on_video(data, timestamp)

    def _audio_packet(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            return
        if self.audio_format is None or packet.payload_type != self._audio_pt or not packet.payload:
            return  # comfort noise, DTMF events, an unexpected codec
        self.last_frame_at = time.monotonic()
        self._on_audio(packet.payload, packet.timestamp)

    def _rtcp_packet(self, data: bytes, addr: tuple[str, int]) -> None:
        """The terminal's RTCP: PLI/FIR about what we send, receiver reports (compound packets)."""
        pos = 0
        while pos + 4 <= len(data):
            first, pt, length = data[pos], data[pos + 1], struct.unpack("!H", data[pos + 2 : pos + 4])[0]
            end = pos + 4 * (length + 1)
            if end > len(data):
                return
            fmt = first & 0x1F
            if pt == 206 and fmt in (1, 4):  # PLI, FIR
                self._remote_keyframe_request()
            elif pt in (200, 201):  # SR / RR: report blocks after the sender ssrc (and SR's sender info)
                block = pos + 8 + (20 if pt == 200 else 0)
                for _ in range(fmt):
                    if block + 24 > end:
                        break
                    ssrc, highest = struct.unpack("!I", data[block : block + 4])[0], struct.unpack("!I", data[block + 8 : block + 12])[0]
                    if ssrc == self._send_ssrc:
                        self.remote_received_seq = highest
                    elif ssrc == self._audio_send_ssrc:
                        self.remote_received_audio_seq = highest
                    block += 24
            pos = end

    def _remote_keyframe_request(self) -> None:
        """The terminal asks for a keyframe of what we send (RTCP PLI/FIR or SIP INFO): replay the GOP."""
        self.remote_keyframe_requests += 1
        if self._send_track is not None:
            self._send_track.request_keyframe()

    def send_video(self, relay: PacketRelay | None) -> None:
        """Send `relay`'s H.264 to the terminal from now on (None: stop sending)."""
        if self._send_task is not None:
            self._send_task.cancel()
            self._send_task = None
        if self._send_track is not None:
            self._send_track.stop()
            self._send_track = None
        if relay is None or self._closing or self._remote_video is None:
            return
        track = RelayTrack(relay, keyframe_interval_s=self._config.keyframe_request_interval_s)
        self._send_track = track
        self._send_task = asyncio.create_task(self._send_loop(track), name=f"sip-{self.session_id[:6]}-send")

    def send_audio(self, relay: AudioRelay | None) -> bool:
        """Send `relay`'s audio to the terminal when it is in the terminal's codec (no transcoding);
        False (nothing sent) when the codecs differ. None: stop sending."""
        if self._audio_send_task is not None:
            self._audio_send_task.cancel()
            self._audio_send_task = None
        fmt, mine = (relay.format if relay is not None else None), self.audio_format
        if relay is None or self._closing or self._remote_audio is None or mine is None or self._audio_pt is None:
            return False
        if fmt is None or fmt.codec != mine.codec:
            return False
        sub = relay.subscribe()
        self._audio_send_task = asyncio.create_task(self._send_audio_loop(sub), name=f"sip-{self.session_id[:6]}-audio")
        return True

    async def _send_audio_loop(self, sub: AudioSubscription) -> None:
        seq, base, first = secrets.randbelow(1 << 16), secrets.randbits(32), None
        try:
            while (packet := await sub.get()) is not None:
                sock, remote = self._audio_rtp, self._remote_audio
                if sock is None or sock.transport is None or remote is None or self._audio_pt is None:
                    return
                first = packet.pts if first is None else first
                rtp = RtpPacket(payload_type=self._audio_pt, sequence_number=seq, timestamp=(base + packet.pts - first) & 0xFFFFFFFF,
                                ssrc=self._audio_send_ssrc, payload=packet.data)
                sock.transport.sendto(rtp.serialize(), remote)
                seq = (seq + 1) & 0xFFFF
                self.sent_audio_packets += 1
        finally:
            sub.close()

    async def _send_loop(self, track: RelayTrack) -> None:
        seq = secrets.randbelow(1 << 16)
        base = secrets.randbits(32)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            sock, remote = self._video_rtp, self._remote_video
            if sock is None or sock.transport is None or remote is None:
                return
            last = len(frame.payloads) - 1
            for i, payload in enumerate(frame.payloads):
                packet = RtpPacket(
                    payload_type=self._video_pt, marker=int(i == last), sequence_number=seq,
                    timestamp=(base + frame.timestamp) & 0xFFFFFFFF, ssrc=self._send_ssrc, payload=payload,
                )
                sock.transport.sendto(packet.serialize(), remote)
                seq = (seq + 1) & 0xFFFF
                self.sent_packets += 1

    def request_keyframe(self, *, info: bool = True) -> None:
        """RTCP PLI to the terminal (WebRTC viewers' keyframe requests end here), and SIP INFO
        picture_fast_update for terminals that only listen to that (at most one a second)."""
        if info and self._state == "connected" and self._call is not None:
            now = time.monotonic()
            if now - self._last_info >= INFO_MIN_INTERVAL_S and self._agent.send_keyframe_request(self._call):
                self._last_info = now
                self.info_keyframe_requests += 1
        rtcp = self._video_rtcp
        if rtcp is None or rtcp.transport is None or self._remote_video_rtcp is None or self._video_ssrc is None:
            return
        self.keyframe_requests += 1
        pli = struct.pack("!BBHII", 0x81, 206, 2, 0x46480001, self._video_ssrc)
        rtcp.transport.sendto(pli, self._remote_video_rtcp)

    async def _keyframes(self) -> None:
        while True:
            await asyncio.sleep(self._config.whip.keyframe_interval_s)
            self.request_keyframe(info=False)  # the periodic refresh stays in RTCP: no SIP traffic every second

    async def _watchdog(self) -> None:
        idle = self._config.whip.idle_timeout_s
        while True:
            await asyncio.sleep(min(1.0, idle / 4))
            quiet = time.monotonic() - (self.last_frame_at or self.connected_at or time.monotonic())
            if quiet > idle:
                log.info("terminal %s: nothing received for %.0f s; hanging up", self.name, quiet)
                self._spawn_close()
                return

    def _remote_hangup(self) -> None:
        log.info("terminal %s hung up", self.name)
        self._call = None  # its dialog is over: no BYE back
        self._spawn_close()

    def _spawn_close(self) -> None:
        if not self._closing:
            asyncio.get_running_loop().create_task(self.close(), name=f"sip-{self.session_id[:6]}-close")

    async def close(self) -> None:
        """Hang up (BYE, or CANCEL while ringing) and close the sockets (safe twice)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            current = asyncio.current_task()
            sending = [t for t in (self._send_task, self._audio_send_task) if t is not None and t is not current]
            self.send_video(None)
            self.send_audio(None)
            await asyncio.gather(*sending, return_exceptions=True)
            for task in self._tasks:
                if task is not current and not task.done():
                    task.cancel()
            await asyncio.gather(*[t for t in self._tasks if t is not current], return_exceptions=True)
            call, self._call = self._call, None
            uac = self._agent.uac
            if call is not None and (uac is not None or isinstance(call, IncomingCall)):
                self._agent.forget(call.call_id)
                try:
                    if isinstance(call, IncomingCall):
                        call.hangup() if self._state == "connected" else call.reject(480, "Temporarily Unavailable")
                    elif self._state == "connected":
                        call.hangup(uac)
                    else:
                        call.cancel(uac)
                except Exception:
                    log.debug("terminal %s: hang-up not sent", self.name, exc_info=True)
            for sock in self._sockets:
                if sock.transport is not None:
                    sock.transport.close()
            self._state = "closed"
        finally:
            self._closed.set()
            self._on_closed(self)
