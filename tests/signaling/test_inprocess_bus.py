"""InProcessBus: groups share work, every group sees every event, backpressure instead of drops."""

from __future__ import annotations

import asyncio
import os

import pytest

from fusionhub.signaling.bus import Event, InProcessBus, Subscription, create_bus, process_group
from fusionhub.signaling.config import BusConfig
from fusionhub.signaling.errors import BusClosed, EventNotSerializable
from fusionhub.signaling.messages import Topic

FLAG = Topic.FLAG_RAISED
CASE = Topic.CASE_CHANGED


async def take(sub: Subscription, n: int, *, ack: bool = True, timeout: float = 2.0) -> list[Event]:
    """The next `n` events of a subscription (acked unless told otherwise)."""
    got: list[Event] = []

    async def run() -> None:
        async for event in sub:
            got.append(event)
            if ack:
                await sub.ack(event)
            if len(got) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return got


async def test_one_consumer_gets_events_in_publish_order() -> None:
    bus = InProcessBus()
    sub = bus.subscribe([FLAG, CASE], group="g")
    sent = [await bus.publish(FLAG if i % 2 else CASE, {"n": i}) for i in range(100)]
    got = await take(sub, 100)
    assert [e.data["n"] for e in got] == list(range(100))
    assert [e.topic for e in got] == [e.topic for e in sent]
    assert [e.id for e in got] == [e.id for e in sent]
    await bus.close()


async def test_topics_filter_what_a_group_receives() -> None:
    bus = InProcessBus()
    flags = bus.subscribe([FLAG], group="flags")
    await bus.publish(CASE, {"n": 1})
    await bus.publish(FLAG, {"n": 2})
    got = await take(flags, 1)
    assert [(e.topic, e.data) for e in got] == [(FLAG, {"n": 2})]
    assert bus.backlog("flags") == 0
    await bus.close()


async def test_each_event_reaches_one_consumer_per_group_and_every_group() -> None:
    bus = InProcessBus()
    shared = [bus.subscribe([FLAG], group="dispatch") for _ in range(2)]
    other = bus.subscribe([FLAG], group="ws-host-1")
    seen: dict[int, list[int]] = {0: [], 1: []}

    async def work(i: int, sub: Subscription) -> None:
        async for event in sub:
            seen[i].append(event.data["n"])
            await asyncio.sleep(0)  # some work, so the other consumer of the group gets a turn
            await sub.ack(event)

    workers = [asyncio.create_task(work(i, s)) for i, s in enumerate(shared)]
    for n in range(200):
        await bus.publish(FLAG, {"n": n})
    broadcast = await take(other, 200)
    async with asyncio.timeout(2):
        while len(seen[0]) + len(seen[1]) < 200:
            await asyncio.sleep(0.01)
    assert sorted(seen[0] + seen[1]) == list(range(200))  # none twice, none lost
    assert seen[0] and seen[1]  # the work was shared
    assert [e.data["n"] for e in broadcast] == list(range(200))
    await bus.close()
    await asyncio.gather(*workers)  # close() ended their iteration


async def test_full_group_makes_publish_wait_and_loses_nothing() -> None:
    bus = InProcessBus(group_queue_size=5)
    sub = bus.subscribe([FLAG], group="slow")
    for n in range(5):
        await asyncio.wait_for(bus.publish(FLAG, {"n": n}), 0.5)
    blocked = asyncio.create_task(bus.publish(FLAG, {"n": 5}))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # backpressure: the publisher waits rather than dropping
    first = await take(sub, 1, ack=False)
    assert not blocked.done()  # taken but not acked still counts against the bound
    await sub.ack(first[0])
    await asyncio.wait_for(blocked, 0.5)

    async def flood() -> None:
        for n in range(6, 100):
            await bus.publish(FLAG, {"n": n})

    publisher = asyncio.create_task(flood())
    rest = await take(sub, 99, timeout=5)
    await publisher
    assert [e.data["n"] for e in first + rest] == list(range(100))
    await bus.close()


async def test_close_releases_a_waiting_publisher_with_bus_closed() -> None:
    bus = InProcessBus(group_queue_size=1)
    bus.subscribe([FLAG], group="g")
    await bus.publish(FLAG, {"n": 0})
    blocked = asyncio.create_task(bus.publish(FLAG, {"n": 1}))
    await asyncio.sleep(0.01)
    await bus.close()
    with pytest.raises(BusClosed):
        await asyncio.wait_for(blocked, 0.5)


async def test_unacked_event_goes_to_the_groups_next_consumer() -> None:
    bus = InProcessBus()
    first = bus.subscribe([FLAG], group="dispatch")
    for n in range(3):
        await bus.publish(FLAG, {"n": n})
    taken = await take(first, 2, ack=False)
    await first.ack(taken[0])
    await first.close()  # went away holding event 1 unacked
    second = bus.subscribe([FLAG], group="dispatch")
    got = await take(second, 2)
    assert [e.data["n"] for e in got] == [1, 2]
    assert got[0].id == taken[1].id
    assert bus.backlog("dispatch") == 0
    await bus.close()


async def test_redelivery_reaches_a_consumer_already_waiting() -> None:
    bus = InProcessBus()
    holder = bus.subscribe([FLAG], group="g")
    waiter = bus.subscribe([FLAG], group="g")
    waiting = asyncio.create_task(take(waiter, 1))
    await asyncio.sleep(0.01)
    await bus.publish(FLAG, {"n": 7})
    await asyncio.sleep(0.01)
    if waiting.done():  # the waiter won the event: nothing to redeliver, still exactly once
        assert [e.data["n"] for e in waiting.result()] == [7]
    else:
        await holder.close()
        assert [e.data["n"] for e in await waiting] == [7]
    await bus.close()


async def test_events_before_a_group_exists_are_not_delivered_to_it() -> None:
    bus = InProcessBus()
    await bus.publish(FLAG, {"n": 0})
    sub = bus.subscribe([FLAG], group="late")
    await bus.publish(FLAG, {"n": 1})
    assert [e.data["n"] for e in await take(sub, 1)] == [1]
    assert bus.backlog("late") == 0
    await bus.close()


async def test_group_keeps_events_while_it_has_no_consumer() -> None:
    bus = InProcessBus()
    sub = bus.subscribe([FLAG], group="g")
    await sub.close()
    await bus.publish(FLAG, {"n": 1})
    again = bus.subscribe([FLAG], group="g")
    assert [e.data["n"] for e in await take(again, 1)] == [1]
    await bus.close()


async def test_close_ends_iteration_and_refuses_more() -> None:
    bus = InProcessBus()
    sub = bus.subscribe([FLAG], group="g")
    reader = asyncio.create_task(take(sub, 1, timeout=5))
    await asyncio.sleep(0.01)
    await bus.close()
    assert await asyncio.wait_for(reader, 0.5) == []
    await bus.close()  # twice is fine
    with pytest.raises(BusClosed):
        await bus.publish(FLAG, {})
    with pytest.raises(BusClosed):
        bus.subscribe([FLAG], group="g")


async def test_subscription_close_ends_only_its_own_iteration() -> None:
    bus = InProcessBus()
    a = bus.subscribe([FLAG], group="a")
    b = bus.subscribe([FLAG], group="b")
    reader = asyncio.create_task(take(a, 1, timeout=5))
    await asyncio.sleep(0.01)
    await a.close()
    await a.close()
    assert await asyncio.wait_for(reader, 0.5) == []
    await bus.publish(FLAG, {"n": 1})
    assert [e.data for e in await take(b, 1)] == [{"n": 1}]
    await bus.close()


async def test_data_must_be_json_and_is_copied() -> None:
    bus = InProcessBus()
    sub = bus.subscribe([FLAG], group="g")
    with pytest.raises(EventNotSerializable):
        await bus.publish(FLAG, {"when": object()})
    original = {"boxes": [1, 2]}
    await bus.publish(FLAG, original)
    original["boxes"].append(3)
    assert (await take(sub, 1))[0].data == {"boxes": [1, 2]}
    await bus.close()


def test_create_bus_picks_the_backend_from_config() -> None:
    from fusionhub.signaling.redisbus import RedisStreamBus

    assert isinstance(create_bus(BusConfig()), InProcessBus)
    bus = create_bus(BusConfig(redis_url="redis://127.0.0.1:6379/0"))  # connects lazily
    assert isinstance(bus, RedisStreamBus)
    asyncio.run(bus.close())


def test_bus_config_is_strict_and_keeps_the_password_out_of_errors() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        BusConfig(redis_urls="redis://x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        BusConfig(claim_idle_s=0)
    with pytest.raises(ValidationError) as info:
        BusConfig(redis_url="http://user:hunter2@127.0.0.1/")
    assert "hunter2" not in str([e["msg"] for e in info.value.errors()])
    assert "hunter2" not in repr(BusConfig(redis_url="redis://:hunter2@127.0.0.1:6379/0"))


async def test_a_transient_group_goes_with_its_subscription_and_frees_a_waiting_publisher() -> None:
    bus = InProcessBus(group_queue_size=1)
    mine = process_group("ws")
    assert mine.startswith("ws@") and mine.endswith(f"-{os.getpid()}")
    sub = bus.subscribe([FLAG], group=mine, transient=True)  # never read: full after one event
    shared = bus.subscribe([FLAG], group="dispatch")
    reader = asyncio.create_task(take(shared, 10))
    await bus.publish(FLAG, {"n": 0})
    blocked = asyncio.create_task(bus.publish(FLAG, {"n": 1}))
    await asyncio.sleep(0.02)
    assert not blocked.done()  # backpressure from the transient group, as from any group
    await sub.close()
    await asyncio.wait_for(blocked, 0.5)  # not BusClosed: the bus is open, the group is gone
    for n in range(2, 10):  # and nothing piles up for a group nobody will read
        await asyncio.wait_for(bus.publish(FLAG, {"n": n}), 0.5)
    assert bus.backlog(mine) == 0
    assert [e.data["n"] for e in await reader] == list(range(10))  # the shared group lost nothing
    with pytest.raises(ValueError, match="family"):
        process_group("ws@x")
    await bus.close()
