"""WHEP with a real aiortc viewer on loopback: H.264 relayed as received, decoded by the viewer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported, GatewayFull, UnknownCamera, UnknownSession
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.ice import host_addresses_pinned, rtc_configuration
from fusionhub.media.packets import EncodedPacket
from fusionhub.media.relay import PacketRelay
from fusionhub.media.rtpsend import PassthroughEncoder, RtpFrame, sender_encoder
from fusionhub.media.whep import InvalidOffer, RelayTrack, WhepSession

from .rtc_helpers import PacketPlayer

CONFIG = MediaConfig(ice_host_addresses=["127.0.0.1"])


@dataclass
class Viewer:
    """An aiortc WHEP client that decodes what it receives."""

    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
    frames: int = 0
    size: tuple[int, int] | None = None
    first_frame_at: float | None = None
    task: asyncio.Task[None] | None = None

    async def offer(self, *, codec: str = "video/H264") -> str:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == codec])
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.task = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.frames += 1
                self.size = (frame.width, frame.height)
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()

    async def wait_frames(self, n: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while self.frames < n:
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.pc.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def live_relay(h264_packets: list[EncodedPacket], loopback_ice: None) -> AsyncIterator[PacketRelay]:
    """A relay fed in real time by the 320x240 test clip, looping."""
    relay = PacketRelay("test", queue_packets=CONFIG.viewer_queue_packets)
    player = PacketPlayer(h264_packets, relay)
    player.start()
    try:
        yield relay
    finally:
        await player.stop()
        relay.close()


def test_rtc_configuration_has_no_ice_server_unless_configured() -> None:
    assert rtc_configuration(MediaConfig()).iceServers == []
    conf = rtc_configuration(MediaConfig(ice_servers=["stun:stun.example.org:3478"]))
    assert conf.iceServers is not None and [s.urls for s in conf.iceServers] == ["stun:stun.example.org:3478"]
    with pytest.raises(ValueError):
        MediaConfig(ice_servers=["http://example.org"])
    with pytest.raises(ValueError):
        MediaConfig(ice_host_addresses=["not-an-ip"])


async def test_answer_offers_only_pinned_host_candidates(live_relay: PacketRelay) -> None:
    assert host_addresses_pinned()
    viewer = Viewer()
    session = WhepSession("s1", 1, live_relay, CONFIG)
    try:
        answer = await session.answer(await viewer.offer())
        candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(" 127.0.0.1 " in c and " typ host" in c for c in candidates)
        assert "a=end-of-candidates" in answer  # gathering completed before answering (no trickle)
        assert "a=sendonly" in answer and "H264/90000" in answer and "VP8" not in answer
    finally:
        await session.close()
        await viewer.close()


async def test_viewer_decodes_relayed_h264_without_hub_transcoding(live_relay: PacketRelay) -> None:
    viewer = Viewer()
    session = WhepSession("s1", 1, live_relay, CONFIG)
    try:
        posted = time.monotonic()
        await viewer.accept(await session.answer(await viewer.offer()))
        await viewer.wait_frames(15)
        assert viewer.size == (320, 240)
        assert viewer.first_frame_at is not None
        print(f"aiortc viewer: first decoded frame {viewer.first_frame_at - posted:.3f} s after the offer")
        # passthrough: the sender was handed ready RTP payloads and has no encoder of its own
        assert isinstance(session.track, RelayTrack) and session.track.packets_sent >= 15
        sender = session.peer_connection.getSenders()[0]
        assert isinstance(sender_encoder(sender), PassthroughEncoder) and not session.transcoding
        assert session.codec is not None and session.codec.startswith("H264")
        assert live_relay.subscriber_count == 1
    finally:
        await session.close()
        await viewer.close()
    assert live_relay.subscriber_count == 0
    assert session.connection_state == "closed"


async def test_relay_track_hands_out_packets_rebased_from_a_keyframe(
    live_relay: PacketRelay, h264_packets: list[EncodedPacket]
) -> None:
    await asyncio.sleep(0.5)  # let the relay cache part of a GOP
    tracks = [RelayTrack(live_relay), RelayTrack(live_relay)]
    try:
        n = int(live_relay.cached_packets) + 3
        got = [await asyncio.wait_for(tracks[0].recv(), 2) for _ in range(n)]
        other = await asyncio.wait_for(tracks[1].recv(), 2)
    finally:
        for track in tracks:
            track.stop()
    assert all(isinstance(f, RtpFrame) for f in got)
    assert got[0].keyframe and got[0].timestamp == 0
    stamps = [f.timestamp for f in got]
    assert stamps == sorted(set(stamps))  # strictly increasing: distinct RTP timestamps
    assert stamps[-1] - stamps[-2] == 3000  # live packets keep the source's 30 fps spacing
    # the payloads are aiortc's own packetization of the access unit, cut once for all viewers
    keys = [H264Encoder._packetize(H264Encoder._split_bitstream(p.data)) for p in h264_packets if p.is_keyframe]
    assert got[0].payloads in keys
    assert other.payloads is got[0].payloads
    assert live_relay.subscriber_count == 0


async def test_offer_without_h264_is_refused(live_relay: PacketRelay) -> None:
    viewer = Viewer()
    session = WhepSession("s1", 1, live_relay, CONFIG)
    try:
        with pytest.raises(CodecUnsupported, match="VP8"):
            await session.answer(await viewer.offer(codec="video/VP8"))
        with pytest.raises(InvalidOffer):
            await WhepSession("s2", 1, live_relay, CONFIG).answer("v=0\r\nnot sdp")
    finally:
        await session.close()
        await viewer.close()


async def test_session_closes_itself_when_the_viewer_goes_away(live_relay: PacketRelay) -> None:
    closed: list[str] = []
    viewer = Viewer()
    session = WhepSession("s1", 1, live_relay, CONFIG, on_closed=lambda s: closed.append(s.session_id))
    try:
        await viewer.accept(await session.answer(await viewer.offer()))
        await viewer.wait_frames(3)
        await viewer.close()  # sends DTLS close_notify: the hub side sees "closed"
        async with asyncio.timeout(15):
            while not closed:
                await asyncio.sleep(0.05)
        assert closed == ["s1"] and live_relay.subscriber_count == 0
    finally:
        await session.close()
        await session.close()  # idempotent
    assert closed == ["s1"]


# --- through the gateway: a real file camera (FileLoopSource) behind the relay ---------------


@pytest.fixture
async def gateway(h264_clip: Path) -> AsyncIterator[MediaGateway]:
    gw = MediaGateway(
        MediaConfig(ice_host_addresses=["127.0.0.1"], max_viewers=2), on_sample=lambda *_: None, on_status=lambda _: None
    )
    await gw.start()
    try:
        await gw.add_file_camera(1, h264_clip)
        yield gw
    finally:
        await gw.stop()
    assert not host_addresses_pinned()  # the gateway gave the process its ICE defaults back


async def test_gateway_serves_viewers_up_to_its_limit_and_whep_delete_ends_one(gateway: MediaGateway) -> None:
    viewers = [Viewer(), Viewer(), Viewer()]
    try:
        sids = []
        for viewer in viewers[:2]:
            answer, sid = await gateway.whep_offer(1, await viewer.offer())
            await viewer.accept(answer)
            sids.append(sid)
        for viewer in viewers[:2]:
            await viewer.wait_frames(5)
            assert viewer.size == (320, 240)
        with pytest.raises(GatewayFull):
            await gateway.whep_offer(1, await viewers[2].offer())
        assert gateway.stats()["viewers"] == 2 and gateway.stats()["refused_full"] == 1
        session = gateway.session(sids[0])
        await gateway.whep_delete(sids[0])
        assert session.closed and session.connection_state == "closed"
        assert gateway.session_ids() == [sids[1]]
        with pytest.raises(UnknownSession):
            await gateway.whep_delete(sids[0])
        # the freed place is usable again
        answer, _ = await gateway.whep_offer(1, await (viewer3 := Viewer()).offer())
        viewers.append(viewer3)
        await viewer3.accept(answer)
        await viewer3.wait_frames(5)
    finally:
        for viewer in viewers:
            await viewer.close()


async def test_gateway_refuses_unknown_camera_and_vp8_only_offer(gateway: MediaGateway) -> None:
    viewer, vp8 = Viewer(), Viewer()
    try:
        with pytest.raises(UnknownCamera):
            await gateway.whep_offer(99, await viewer.offer())
        with pytest.raises(CodecUnsupported):
            await gateway.whep_offer(1, await vp8.offer(codec="video/VP8"))
        assert gateway.stats()["viewers"] == 0  # refused offers hold no place
    finally:
        await viewer.close()
        await vp8.close()


async def test_remove_camera_closes_its_viewers(gateway: MediaGateway) -> None:
    viewer = Viewer()
    try:
        answer, sid = await gateway.whep_offer(1, await viewer.offer())
        await viewer.accept(answer)
        await viewer.wait_frames(3)
        session = gateway.session(sid)
        await gateway.remove_camera(1)
        assert session.closed and gateway.session_ids() == []
        with pytest.raises(UnknownCamera):
            gateway.status(1)
    finally:
        await viewer.close()


async def test_replacing_a_camera_source_keeps_its_viewers(gateway: MediaGateway, tmp_path: Path) -> None:
    from .rtc_helpers import make_h264_clip

    viewer = Viewer()
    try:
        answer, sid = await gateway.whep_offer(1, await viewer.offer())
        await viewer.accept(answer)
        await viewer.wait_frames(3)
        source = gateway._cameras[1].source
        await gateway.add_file_camera(1, tmp_path / "missing.mp4")  # another path: the source is replaced
        assert gateway._cameras[1].source is not source
        bigger = make_h264_clip(tmp_path / "bigger.mp4", width=480, height=272, seconds=1)
        await gateway.add_file_camera(1, bigger)
        source = gateway._cameras[1].source
        await gateway.add_file_camera(1, bigger)  # same source again (e.g. the camera was renamed): no-op
        assert gateway._cameras[1].source is source
        async with asyncio.timeout(15):
            while viewer.size != (480, 272):  # same session, now showing the new source
                await asyncio.sleep(0.05)
        assert gateway.session_ids() == [sid]
    finally:
        await viewer.close()


async def test_session_never_connected_is_closed_after_the_connect_timeout(live_relay: PacketRelay) -> None:
    closed: list[str] = []
    viewer = Viewer()
    config = MediaConfig(ice_host_addresses=["127.0.0.1"], connect_timeout_s=0.5)
    session = WhepSession("s1", 1, live_relay, config, on_closed=lambda s: closed.append(s.session_id))
    try:
        await session.answer(await viewer.offer())  # the viewer never applies the answer
        async with asyncio.timeout(5):
            while not closed:
                await asyncio.sleep(0.05)
        assert session.connection_state == "closed" and live_relay.subscriber_count == 0
    finally:
        await session.close()
        await viewer.close()
