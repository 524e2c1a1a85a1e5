"""PacketRelay: late joiners start at a keyframe, slow viewers stay bounded and never see a broken GOP."""

from __future__ import annotations

import asyncio

import pytest

from fusionhub.media.packets import EncodedPacket
from fusionhub.media.relay import PacketRelay, RelaySubscription


def pkt(n: int, *, key: bool = False) -> EncodedPacket:
    return EncodedPacket(data=bytes([n % 256]) * 4, pts=n * 3000, is_keyframe=key)


def feed(relay: PacketRelay, start: int, count: int, gop: int = 10) -> None:
    for n in range(start, start + count):
        relay.on_packet(pkt(n, key=n % gop == 0))


async def drain(sub: RelaySubscription) -> list[EncodedPacket]:
    out = []
    while len(sub):
        item = await sub.get()
        assert item is not None
        out.append(item.packet)
    return out


async def test_late_subscriber_starts_at_once_with_the_cached_gop() -> None:
    relay = PacketRelay("cam1", queue_packets=50)
    feed(relay, 0, 14)  # keyframes at 0 and 10: the current GOP is 10..13
    sub = relay.subscribe()
    first = await asyncio.wait_for(sub.get(), 0.1)  # immediately, no new packet needed
    assert first is not None and first.backlog and first.packet.is_keyframe and first.packet.pts == 10 * 3000
    rest = await drain(sub)
    assert [p.pts // 3000 for p in rest] == [11, 12, 13]
    feed(relay, 14, 1)
    live = await sub.get()
    assert live is not None and not live.backlog and live.packet.pts == 14 * 3000


async def test_subscriber_before_any_keyframe_waits_for_one() -> None:
    relay = PacketRelay("cam1", queue_packets=50)
    feed(relay, 5, 3)  # mid-GOP start of the source: nothing decodable yet
    sub = relay.subscribe()
    assert len(sub) == 0
    feed(relay, 8, 4)  # 8, 9 are P-frames, 10 a keyframe, 11 a P-frame
    got = await drain(sub)
    assert [p.pts // 3000 for p in got] == [10, 11]
    assert got[0].is_keyframe
    assert sub.dropped == 2


async def test_slow_subscriber_stays_bounded_and_resumes_at_a_keyframe() -> None:
    relay = PacketRelay("cam1", queue_packets=8)
    fast, slow = relay.subscribe(), relay.subscribe()
    seen_fast: list[EncodedPacket] = []
    for n in range(100):
        relay.on_packet(pkt(n, key=n % 10 == 0))
        assert len(slow) <= 8  # never more than its queue, however far behind
        seen_fast += await drain(fast)
    assert len(seen_fast) == 100  # one slow viewer does not hurt the others
    assert slow.overflows > 0 and slow.dropped > 0
    got = await drain(slow)
    for n in range(100, 115):  # the viewer keeps up again from here on
        feed(relay, n, 1)
        got += await drain(slow)
        await drain(fast)
    assert got[0].is_keyframe
    assert [p.pts // 3000 for p in got[-15:]] == list(range(100, 115))  # caught up, nothing missing
    # what the slow viewer does get is whole GOP runs: every packet follows its predecessor
    for prev, cur in zip(got, got[1:], strict=False):
        assert cur.is_keyframe or cur.pts == prev.pts + 3000
    assert relay.stats()["dropped"] == slow.dropped


async def test_overflow_on_a_keyframe_resumes_right_there() -> None:
    relay = PacketRelay("cam1", queue_packets=4)
    sub = relay.subscribe()
    feed(relay, 0, 4, gop=4)  # fills the queue: 0(k) 1 2 3
    relay.on_packet(pkt(4, key=True))  # full queue + a keyframe: restart at this keyframe
    got = await drain(sub)
    assert [p.pts // 3000 for p in got] == [4]
    assert sub.dropped == 4 and sub.overflows == 1


async def test_gop_longer_than_the_queue_is_not_cached() -> None:
    relay = PacketRelay("cam1", queue_packets=4)
    feed(relay, 0, 6, gop=100)  # a keyframe then 5 P-frames: longer than 4
    assert relay.cached_packets == 0
    sub = relay.subscribe()
    assert len(sub) == 0
    feed(relay, 100, 1, gop=100)
    assert relay.cached_packets == 1 and len(sub) == 1


async def test_unsubscribe_frees_the_viewer_and_wakes_its_reader() -> None:
    relay = PacketRelay("cam1", queue_packets=8)
    feed(relay, 0, 3)
    sub = relay.subscribe()
    await drain(sub)
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    relay.unsubscribe(sub)
    assert await asyncio.wait_for(reader, 1) is None
    assert relay.subscriber_count == 0
    feed(relay, 3, 5)
    assert len(sub) == 0  # nothing is queued for a gone viewer
    relay.unsubscribe(sub)  # twice is fine


async def test_reset_makes_viewers_wait_for_the_new_sources_keyframe() -> None:
    relay = PacketRelay("cam1", queue_packets=8)
    feed(relay, 0, 3)
    sub = relay.subscribe()
    relay.reset()
    assert len(sub) == 0 and relay.cached_packets == 0
    relay.on_packet(pkt(1))  # a P-frame of the new source before its keyframe
    relay.on_packet(pkt(0, key=True))
    got = await drain(sub)
    assert len(got) == 1 and got[0].is_keyframe


async def test_close_ends_every_subscription() -> None:
    relay = PacketRelay("cam1", queue_packets=8)
    subs = [relay.subscribe() for _ in range(3)]
    relay.close()
    assert all(s.closed for s in subs) and relay.subscriber_count == 0
    assert await subs[0].get() is None
    with pytest.raises(RuntimeError):
        relay.subscribe()
    relay.close()


async def test_the_source_hears_when_its_first_viewer_comes_and_its_last_goes() -> None:
    """on_watched: True on the first subscriber, False when the last leaves, nothing in between;
    a hook that fails does not keep a viewer out."""
    relay = PacketRelay("cam1", queue_packets=50)
    heard: list[bool] = []
    relay.on_watched = heard.append
    first = relay.subscribe()
    second = relay.subscribe()
    first.close()
    assert heard == [True]
    relay.unsubscribe(second)
    assert heard == [True, False]

    def broken(_watched: bool) -> None:
        raise RuntimeError("the source is gone")

    relay.on_watched = broken
    third = relay.subscribe()
    feed(relay, 0, 2)
    assert [p.pts for p in await drain(third)] == [0, 3000]
