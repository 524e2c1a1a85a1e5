"""WHIP: a publisher's H.264 + Opus become a source like any camera, without decoding on the way."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest
from aiortc import RTCRtpReceiver

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported, GatewayFull
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.publishers import InvalidPublisherName, PublisherBusy, UnknownPublisher
from fusionhub.media.whep import InvalidOffer
from fusionhub.media.whip import WhipSession, install_tap
from fusionhub.signaling.messages import PublisherStatus
from tests.support.avclip import TONE_LEVEL

from .av_helpers import AvViewer
from .publish_helpers import Publisher

pytestmark = pytest.mark.slow


def thumb_of(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.resize(frame, (16, 9), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


class Hub:
    def __init__(self) -> None:
        self.samples: list[tuple[int, np.ndarray]] = []
        self.thumbs: dict[int, list[np.ndarray | None]] = {}  # per source, as on_sample got them
        self.thumb_threads: set[str] = set()
        self.statuses: list[PublisherStatus] = []
        config = MediaConfig.model_validate(
            {"ice_host_addresses": ["127.0.0.1"], "whip": {"max_publishers": 2, "keyframe_interval_s": 1.0},
             "ingest": {"sample_min_interval_s": 0.5}}
        )
        self.gateway = MediaGateway(
            config,
            on_sample=self.on_sample,
            on_status=lambda _: None,
            on_publisher=self.statuses.append,
            thumbnailer=self.thumbnail,
        )

    def on_sample(self, sid: int, ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        self.samples.append((sid, frame))
        self.thumbs.setdefault(sid, []).append(thumb)

    def thumbnail(self, frame: np.ndarray) -> np.ndarray:
        self.thumb_threads.add(threading.current_thread().name)
        return thumb_of(frame)

    def states(self, name: str) -> list[str]:
        return [s.state for s in self.statuses if s.name == name]


@pytest.fixture
async def hub(loopback_ice: None) -> AsyncIterator[Hub]:
    h = Hub()
    await h.gateway.start()
    try:
        yield h
    finally:
        await h.gateway.stop()


async def publish(hub: Hub, name: str, *, audio: bool = True) -> tuple[Publisher, str]:
    pub = Publisher(audio=audio)
    answer, sid = await hub.gateway.whip_publish(name, await pub.offer(), user_id=5, region="city")
    await pub.accept(answer)
    return pub, sid


async def until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_publisher_is_viewed_with_its_audio_sampled_and_recorded(hub: Hub) -> None:
    pub, _ = await publish(hub, "phone-1")
    viewer = AvViewer()
    try:
        await until(lambda: "online" in hub.states("phone-1"))
        live = hub.gateway.publishers.get("phone-1")
        assert live.source_id < 0 and live.source.audio_format is not None
        assert live.source.audio_format.codec == "opus"
        answer, sid = await hub.gateway.whep_offer_publisher("phone-1", await viewer.offer())
        await viewer.accept(answer)
        assert hub.gateway.session(sid).audio_codec == "opus"  # passed through, not transcoded
        await viewer.wait(video=30, audio=50)
        assert viewer.audio_rms > TONE_LEVEL / 2**0.5 / 2, viewer.audio_rms
        # sampled for analytics like a camera, and its packets kept for clips
        await until(lambda: any(sid_ == live.source_id for sid_, _ in hub.samples))
        frame = next(f for s, f in hub.samples if s == live.source_id)
        assert frame.shape == (240, 320, 3)
        # with its thumbnail, made in the sampling thread, never on the loop
        thumb = hub.thumbs[live.source_id][0]
        assert thumb is not None and np.array_equal(thumb, thumb_of(frame))
        assert hub.thumb_threads and threading.main_thread().name not in hub.thumb_threads
        ring = hub.gateway.ring(live.source_id)
        assert ring is not None and ring.bytes > 0
        assert hub.gateway.stats()["publishers"]["phone-1"]["opus"] is None  # nothing transcoded
    finally:
        await viewer.close()
        await pub.close()
    await until(lambda: "offline" in hub.states("phone-1"))
    with pytest.raises(UnknownPublisher):
        hub.gateway.publishers.get("phone-1")
    await until(lambda: not hub.gateway.session_ids())  # its viewers were closed with it


async def test_a_viewer_who_comes_while_the_publisher_is_being_answered_is_told_to_retry_and_then_hears_it(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call's other party views the publisher as soon as it appears. Answered in the moment
    between its WHIP offer and answer, the viewer got a video-only answer (the audio format is
    settled by that answer, and WHEP cannot add audio later): a call where one side never heard
    the other."""
    answering = asyncio.Event()
    release = asyncio.Event()
    original = WhipSession.answer

    async def slow_answer(self: WhipSession, offer_sdp: str) -> str:
        answering.set()
        await release.wait()
        return await original(self, offer_sdp)

    monkeypatch.setattr(WhipSession, "answer", slow_answer)
    pub, early, viewer, rival = Publisher(audio=True), AvViewer(), AvViewer(), Publisher(audio=True)
    try:
        publishing = asyncio.create_task(hub.gateway.whip_publish("phone-3", await pub.offer(), user_id=5, region="city"))
        await asyncio.wait_for(answering.wait(), 5)
        with pytest.raises(UnknownPublisher):  # "not publishing yet": the call page retries
            await hub.gateway.whep_offer_publisher("phone-3", await early.offer())
        with pytest.raises(PublisherBusy):  # yet the name is taken while its answer is built
            await hub.gateway.whip_publish("phone-3", await rival.offer(), user_id=6, region="city")
        release.set()
        answer, _ = await asyncio.wait_for(publishing, 10)
        await pub.accept(answer)
        answer, sid = await hub.gateway.whep_offer_publisher("phone-3", await viewer.offer())
        await viewer.accept(answer)
        assert hub.gateway.session(sid).audio_codec == "opus"
        await viewer.wait(video=10, audio=20)
        assert viewer.audio_rms > TONE_LEVEL / 2**0.5 / 2, viewer.audio_rms
    finally:
        for peer in (viewer, early, rival, pub):
            await peer.close()


async def test_a_late_viewer_gets_a_picture_at_once(hub: Hub) -> None:
    pub, _ = await publish(hub, "terminal-7", audio=False)
    try:
        await until(lambda: "online" in hub.states("terminal-7"))
        await asyncio.sleep(1.5)
        late = AvViewer()
        answer, _ = await hub.gateway.whep_offer_publisher("terminal-7", await late.offer())
        await late.accept(answer)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await late.wait(video=1)
        assert loop.time() - started < 2.0
        await late.close()
    finally:
        await pub.close()


async def test_refusals(hub: Hub) -> None:
    pub, _ = await publish(hub, "one", audio=False)
    spare = [Publisher(audio=False) for _ in range(3)]
    try:
        with pytest.raises(PublisherBusy):
            await hub.gateway.whip_publish("one", await spare[0].offer(), user_id=1, region="city")
        with pytest.raises(InvalidPublisherName):
            await hub.gateway.whip_publish("../etc", "v=0", user_id=1, region="city")
        with pytest.raises(InvalidOffer):
            await hub.gateway.whip_publish("two", "v=0\r\n", user_id=1, region="city")
        no_h264 = (await spare[1].offer()).replace("H264", "X264")
        with pytest.raises(CodecUnsupported):
            await hub.gateway.whip_publish("two", no_h264, user_id=1, region="city")
        extra, _ = await publish(hub, "two", audio=False)
        with pytest.raises(GatewayFull):  # max_publishers = 2
            await hub.gateway.whip_publish("three", await spare[2].offer(), user_id=1, region="city")
        await extra.close()
        assert [p.name for p in hub.gateway.publishers.list()] in (["one", "two"], ["one"])
    finally:
        await pub.close()
        for p in spare:
            await p.close()


def test_the_private_aiortc_hook_is_still_there() -> None:
    """install_tap relies on RTCRtpReceiver's private jitter buffer (aiortc 1.16.0, pinned)."""
    assert "_RTCRtpReceiver__jitter_buffer" in RTCRtpReceiver.__init__.__code__.co_names and hasattr(
        RTCRtpReceiver, "_send_rtcp_pli"
    )
    assert callable(install_tap)
