"""Fan-out without transcoding: late joiners start from the GOP cache, keyframe requests are
answered from it, set-ups are admitted through a bounded gate, idle cameras are accounted for."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from fusionhub.media.admission import LoopLagMonitor, SetupGate
from fusionhub.media.config import MediaConfig
from fusionhub.media.demand import PullDemand
from fusionhub.media.errors import GatewayFull
from fusionhub.media.packets import EncodedPacket
from fusionhub.media.relay import PacketRelay
from fusionhub.media.whep import WhepSession

from .rtc_helpers import PacketPlayer, demux_annexb, make_h264_clip
from .viewers import DecodingViewer

FPS = 25
GOP_S = 3.0  # long enough that waiting for the next keyframe would take well over a second
CONFIG = MediaConfig(ice_host_addresses=["127.0.0.1"])


@pytest.fixture(scope="module")
def long_gop_packets(tmp_path_factory: pytest.TempPathFactory) -> list[EncodedPacket]:
    clip = make_h264_clip(tmp_path_factory.mktemp("fanout") / "gop3.mp4", fps=FPS, seconds=6, gop_s=GOP_S)
    return demux_annexb(clip)


@pytest.fixture
async def relay(long_gop_packets: list[EncodedPacket], loopback_ice: None) -> AsyncIterator[PacketRelay]:
    """A camera-like relay: 25 fps in real time, a keyframe every 3 s."""
    relay = PacketRelay("test", queue_packets=CONFIG.viewer_queue_packets)
    player = PacketPlayer(long_gop_packets, relay, fps=FPS)
    player.start()
    try:
        yield relay
    finally:
        await player.stop()
        relay.close()


async def _mid_gop(relay: PacketRelay, frames: int) -> None:
    async with asyncio.timeout(2 * GOP_S + 2):
        while relay.cached_packets != frames:
            await asyncio.sleep(0.005)


async def test_late_viewer_sees_its_first_frame_within_a_second_from_the_cache(relay: PacketRelay) -> None:
    await _mid_gop(relay, 30)  # 1.2 s into a 3 s GOP: the next keyframe is 1.8 s away
    keyframes_before = relay.keyframes_in
    viewer = DecodingViewer()
    session = WhepSession("late", 1, relay, CONFIG)
    try:
        posted = time.monotonic()
        await viewer.accept(await session.answer(await viewer.offer()))
        await viewer.wait_frames(1, timeout=5)
        first = viewer.frame_times[0] - posted
        print(f"late viewer: first decoded frame {first:.3f} s after its offer")
        assert first < 1.0
        assert relay.keyframes_in == keyframes_before, "it started from the cached keyframe, not a new one"
        await viewer.wait_frames(40)
        assert viewer.size == (320, 240)
    finally:
        await session.close()
        await viewer.close()


async def test_keyframe_request_is_answered_from_the_gop_cache(relay: PacketRelay) -> None:
    viewer = DecodingViewer()
    session = WhepSession("pli", 1, relay, CONFIG)
    try:
        await viewer.accept(await session.answer(await viewer.offer()))
        await viewer.wait_frames(5)
        await _mid_gop(relay, 40)
        ssrc = session.peer_connection.getSenders()[0]._ssrc
        before, asked = viewer.frames, time.monotonic()
        await viewer.send_pli(ssrc)
        async with asyncio.timeout(3):
            while session.track.restarts < 1:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        burst = viewer.frames - before
        # the replayed GOP (40+ frames) arrives at once on top of the live ones (about 12 in 0.5 s)
        print(f"after PLI: {burst} frames decoded in {time.monotonic() - asked:.2f} s")
        assert burst >= 40
        # a second request within keyframe_request_interval_s is counted, not replayed again
        await viewer.send_pli(ssrc)
        async with asyncio.timeout(3):
            while session.track.keyframe_requests < 2:
                await asyncio.sleep(0.01)
        assert session.track.restarts == 1
        assert session.stats()["keyframe_restarts"] == 1 and not session.transcoding
        t0 = time.monotonic()
        await asyncio.sleep(1.0)
        assert viewer.fps(t0, time.monotonic()) >= 0.8 * FPS  # and it is live again
    finally:
        await session.close()
        await viewer.close()


def test_keyframe_request_without_a_cached_gop_waits_and_asks_upstream(
    long_gop_packets: list[EncodedPacket],
) -> None:
    relay = PacketRelay("test", queue_packets=8)  # a 75-frame GOP does not fit: nothing cached
    asked: list[int] = []
    relay.on_keyframe_wanted = lambda: asked.append(1)
    sub = relay.subscribe()
    for packet in long_gop_packets[:20]:
        relay.on_packet(packet)
    assert relay.cached_packets == 0
    assert sub.restart_at_keyframe() is False and asked == [1]
    assert len(sub) == 0  # P-frames are skipped until the next keyframe
    relay.on_packet(long_gop_packets[21])
    assert len(sub) == 0
    relay.on_packet(long_gop_packets[75])  # the next keyframe
    assert len(sub) == 1 and sub.restarts == 0


# ---- admission ---------------------------------------------------------------------------


async def test_setup_gate_admits_in_order_and_refuses_beyond_its_bounds() -> None:
    gate = SetupGate(slots=1, queue=1, wait_s=0.3, retry_after_s=3)
    first = await gate.acquire()
    waiting = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    assert gate.waiting == 1
    with pytest.raises(GatewayFull) as refused:
        await gate.acquire()  # one setting up, one waiting: the queue is full
    assert refused.value.retry_after_s == 3
    first.release()
    first.release()  # idempotent: the place is not given twice
    second = await asyncio.wait_for(waiting, 1)
    assert gate.active == 1
    t = time.monotonic()
    with pytest.raises(GatewayFull):
        await gate.acquire()  # waits its 0.3 s, then is refused
    assert 0.25 < time.monotonic() - t < 1.0
    second.release()
    assert gate.active == 0
    assert gate.stats() == {
        "setting_up": 0,
        "waiting": 0,
        "admitted": 2,
        "refused_queue_full": 1,
        "refused_wait": 1,
        "refused_lag": 0,
    }


async def test_setup_gate_waits_out_a_stall_and_refuses_a_loop_that_stays_late() -> None:
    lag = LoopLagMonitor(interval_s=0.02, alpha=0.5)
    gate = SetupGate(slots=4, queue=1, wait_s=0.6, retry_after_s=2, lag=lag, max_lag_ms=50)
    lag.start()

    async def busy_loop() -> None:  # a saturated loop: every turn of it runs 60 ms of work
        while True:
            time.sleep(0.06)  # noqa: ASYNC251 -- on purpose
            await asyncio.sleep(0)

    try:
        (await gate.acquire()).release()
        await asyncio.sleep(0.05)  # the monitor is running

        # one stall: the offer made in it waits until the loop has caught up, then is admitted
        time.sleep(0.3)  # noqa: ASYNC251 -- on purpose: one long stall
        await asyncio.sleep(0.03)
        assert lag.lag_ms > 50
        (await asyncio.wait_for(gate.acquire(), 5)).release()
        assert lag.lag_ms <= 50 and gate.refused_lag == 0

        # a loop that stays late: the offer waits its 0.6 s, then is refused as saturated;
        # one more while it waits finds the queue (1) full and is refused at once
        hog = asyncio.create_task(busy_loop())
        async with asyncio.timeout(5):
            while lag.lag_ms <= 50:
                await asyncio.sleep(0.01)
        waiting = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0.1)
        assert gate.stats()["waiting"] == 1
        with pytest.raises(GatewayFull, match="saturated"):
            await gate.acquire()
        t = time.monotonic()
        with pytest.raises(GatewayFull, match="saturated"):
            await waiting
        assert time.monotonic() - t < 1.5
        hog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hog

        async with asyncio.timeout(5):
            while lag.lag_ms > 50:  # the loop is fine again: so is admission
                await asyncio.sleep(0.02)
        (await gate.acquire()).release()
    finally:
        await lag.stop()
        await lag.stop()
    assert gate.refused_lag == 2 and gate.stats()["waiting"] == 0


def test_pull_demand_grace_viewers_and_analytics() -> None:
    demand = PullDemand(grace_s=10)
    demand.add(1, now=0)
    demand.add(2, now=0)
    demand.set_needed(2, True, now=0)
    assert demand.due(9) == [] and demand.due(10) == [1]  # a new camera is pulled for the grace period
    demand.set_viewers(1, 1, now=5)
    assert demand.due(100) == []  # watched
    demand.set_viewers(1, 0, now=100)
    assert demand.due(109) == [] and demand.due(110) == [1]
    demand.set_idle(1, True)
    assert demand.due(200) == [] and demand.is_idle(1)
    demand.set_needed(2, False, now=50)
    assert demand.due(60) == [2]
    assert PullDemand(grace_s=None).due(1e9) == []
