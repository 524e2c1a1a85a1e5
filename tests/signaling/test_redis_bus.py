"""RedisStreamBus against the real Redis on 127.0.0.1:6379: hub processes sharing one bus."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from fusionhub.signaling.bus import Event, Subscription, process_group
from fusionhub.signaling.errors import BusUnavailable
from fusionhub.signaling.messages import Topic
from fusionhub.signaling.redisbus import RedisStreamBus
from tests.support.cancels import drop_own_cancel

pytestmark = pytest.mark.redis

URL = "redis://127.0.0.1:6379/0"
FLAG = Topic.FLAG_RAISED
CASE = Topic.CASE_CHANGED

BusFactory = Callable[..., RedisStreamBus]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A stream prefix of this test's own; its keys are deleted afterwards."""
    client = aioredis.Redis.from_url(URL)
    try:
        await client.ping()
    except OSError as exc:  # pragma: no cover - depends on the machine
        await client.aclose()
        pytest.skip(f"no Redis on 127.0.0.1:6379: {exc}")
    name = f"test-{uuid.uuid4().hex[:12]}:"
    yield name
    keys = [key async for key in client.scan_iter(match=f"{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def make_bus(prefix: str) -> AsyncIterator[BusFactory]:
    """Bus instances standing for separate hub processes; all closed at the end."""
    made: list[RedisStreamBus] = []

    def make(**kwargs: object) -> RedisStreamBus:
        bus = RedisStreamBus(URL, stream_prefix=prefix, read_block_s=0.2, **kwargs)  # type: ignore[arg-type]
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


async def take(sub: Subscription, n: int, *, ack: bool = True, timeout: float = 5.0) -> list[Event]:
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


async def test_two_hub_processes_share_a_group_without_duplicates(make_bus: BusFactory) -> None:
    hub_a, hub_b, producer = make_bus(read_batch=5), make_bus(read_batch=5), make_bus()
    subs = [hub_a.subscribe([FLAG], group="dispatch"), hub_b.subscribe([FLAG], group="dispatch")]
    for sub in subs:
        await sub.ready()
    seen: list[list[int]] = [[], []]

    async def work(i: int, sub: Subscription) -> None:
        async for event in sub:
            seen[i].append(event.data["n"])
            await asyncio.sleep(0.001)  # some work, so the other process gets a turn
            await sub.ack(event)

    workers = [asyncio.create_task(work(i, s)) for i, s in enumerate(subs)]
    sent = [await producer.publish(FLAG, {"n": n}) for n in range(200)]
    async with asyncio.timeout(10):
        while len(seen[0]) + len(seen[1]) < 200:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # a duplicate would show up now
    assert sorted(seen[0] + seen[1]) == list(range(200))
    assert seen[0] and seen[1]
    assert all(sorted(s) == s for s in seen)  # each process sees its share in order
    assert len({e.id for e in sent}) == 200
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    pending = await hub_a.redis.xpending(hub_a.key(FLAG), "dispatch")
    assert pending["pending"] == 0  # every event acked


async def test_a_reader_whose_cancel_a_library_dropped_still_stops(make_bus: BusFactory) -> None:
    """Python 3.11's asyncio.wait_for, which redis-py writes every command with, drops a cancel that
    comes just as the command goes out. The reader then read on for ever, and whoever waited for it
    to stop hung (a hub shutting down; this suite, until its timeout crashed the process). The
    subscription honours the request at its next turn."""
    sub = make_bus().subscribe([FLAG], group="g")
    await sub.ready()
    got: list[Event] = []

    async def reader() -> None:
        await drop_own_cancel()
        async for event in sub:
            got.append(event)

    task = asyncio.create_task(reader())
    done, _ = await asyncio.wait([task], timeout=3)
    assert task in done and task.cancelled(), "the reader read on after it was asked to stop"
    assert not got


async def test_every_hub_process_broadcasting_in_its_own_group_sees_every_event(make_bus: BusFactory) -> None:
    subs = [make_bus().subscribe([CASE], group=f"ws-host-{pid}") for pid in (1, 2)]
    for sub in subs:
        await sub.ready()
    producer = make_bus()
    for n in range(20):
        await producer.publish(CASE, {"n": n})
    for sub in subs:
        assert [e.data["n"] for e in await take(sub, 20)] == list(range(20))


async def test_a_deleted_stream_is_recreated_and_reading_goes_on(make_bus: BusFactory) -> None:
    bus = make_bus()
    sub = bus.subscribe([FLAG], group="g")
    await sub.ready()
    await bus.redis.delete(bus.key(FLAG))  # e.g. Redis restarted without persistence
    reader = asyncio.create_task(take(sub, 1, timeout=5))
    async with asyncio.timeout(5):
        while not await bus.redis.exists(bus.key(FLAG)):
            await asyncio.sleep(0.05)
    await bus.publish(FLAG, {"n": 1})
    assert [e.data["n"] for e in await reader] == [1]


async def test_event_of_a_consumer_that_died_is_claimed_after_idle_time(make_bus: BusFactory) -> None:
    doomed, survivor = make_bus(claim_idle_s=1.0), make_bus(claim_idle_s=1.0)
    dead = doomed.subscribe([FLAG], group="dispatch", consumer="hub-dead")
    await dead.ready()
    live = survivor.subscribe([FLAG], group="dispatch", consumer="hub-live")
    await live.ready()
    sent = await survivor.publish(FLAG, {"flag_id": "f-1"})
    taken = await take(dead, 1, ack=False)  # read, never acked
    assert taken[0].id == sent.id
    await doomed.close()  # the process is gone; its pending entry stays in Redis
    started = time.monotonic()
    got = await take(live, 1, timeout=6)
    waited = time.monotonic() - started
    assert (got[0].id, got[0].data) == (sent.id, {"flag_id": "f-1"})
    assert waited >= 0.5  # not handed over before it had been idle for a while
    pending = await survivor.redis.xpending(survivor.key(FLAG), "dispatch")
    assert pending["pending"] == 0


async def test_events_published_while_a_subscriber_is_away_arrive_after_it_reconnects(
    make_bus: BusFactory,
) -> None:
    producer = make_bus()
    first = make_bus()
    sub = first.subscribe([FLAG, CASE], group="dispatch")
    await sub.ready()
    await producer.publish(FLAG, {"n": 0})
    assert [e.data["n"] for e in await take(sub, 1)] == [0]
    await first.close()  # the hub process restarts
    for n in range(1, 6):
        await producer.publish(FLAG if n % 2 else CASE, {"n": n})
    again = make_bus().subscribe([FLAG, CASE], group="dispatch")
    got = await take(again, 5)
    assert [e.data["n"] for e in got] == [1, 2, 3, 4, 5]  # interleaved back into publish order
    assert [e.topic for e in got] == [FLAG, CASE, FLAG, CASE, FLAG]


async def test_a_consumer_back_under_its_name_gets_its_unacked_events_first(make_bus: BusFactory) -> None:
    producer = make_bus()
    sub = make_bus().subscribe([FLAG], group="g", consumer="hub-1")
    await sub.ready()
    for n in range(3):
        await producer.publish(FLAG, {"n": n})
    await take(sub, 2, ack=False)
    await sub.close()
    back = make_bus().subscribe([FLAG], group="g", consumer="hub-1")
    assert [e.data["n"] for e in await take(back, 3, timeout=3)] == [0, 1, 2]


async def test_a_new_group_starts_at_the_end_of_the_stream(make_bus: BusFactory) -> None:
    bus = make_bus()
    await bus.publish(FLAG, {"n": 0})
    sub = bus.subscribe([FLAG], group="late")
    await sub.ready()
    await bus.publish(FLAG, {"n": 1})
    assert [e.data["n"] for e in await take(sub, 1)] == [1]


async def test_close_ends_a_blocked_read_promptly(make_bus: BusFactory) -> None:
    bus = RedisStreamBus(URL, stream_prefix=f"test-{uuid.uuid4().hex[:12]}:", read_block_s=5.0)
    sub = bus.subscribe([FLAG], group="g")
    await sub.ready()
    reader = asyncio.create_task(take(sub, 1, timeout=10))
    await asyncio.sleep(0.2)  # now blocked in XREADGROUP for up to 5 s
    started = time.monotonic()
    await bus.close()
    assert await asyncio.wait_for(reader, 2) == []
    assert time.monotonic() - started < 1.0
    await bus.close()
    client = aioredis.Redis.from_url(URL)
    await client.delete(bus.key(FLAG))
    await client.aclose()


async def test_unreachable_redis_raises_after_the_timeout_without_logging_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fusionhub")
    bus = RedisStreamBus("redis://hub:hunter2@127.0.0.1:1/0", publish_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(BusUnavailable) as info:
        await bus.publish(FLAG, {"n": 1})
    elapsed = time.monotonic() - started
    await bus.close()
    assert 0.4 <= elapsed < 3.0  # retried with backoff, not forever, not in a busy loop
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in caplog.text
    assert "127.0.0.1:1" in caplog.text
    retries = [r for r in caplog.records if "retrying" in r.getMessage() or "still failing" in r.getMessage()]
    assert 2 <= len(retries) <= 10


async def _groups(bus: RedisStreamBus, topic: Topic) -> set[str]:
    return {(g["name"].decode() if isinstance(g["name"], bytes) else g["name"]) for g in await bus.redis.xinfo_groups(bus.key(topic))}


async def test_a_transient_group_goes_when_its_subscription_closes(make_bus: BusFactory) -> None:
    bus = make_bus()
    mine = process_group("ws")
    transient = bus.subscribe([CASE], group=mine, transient=True)
    shared = bus.subscribe([CASE], group="dispatch")
    for sub in (transient, shared):
        await sub.ready()
    await bus.publish(CASE, {"n": 1})
    assert [e.data["n"] for e in await take(transient, 1)] == [1]
    assert await _groups(bus, CASE) == {mine, "dispatch"}
    await transient.close()
    await shared.close()
    assert await _groups(bus, CASE) == {"dispatch"}  # a shared group outlives its subscriptions


async def test_a_group_left_by_a_dead_process_is_removed_by_the_next_one_of_its_family(make_bus: BusFactory) -> None:
    """A hub process killed with -9 never closes its bridge: its group would stay forever."""
    bus = make_bus(stale_group_s=0.5)
    key = bus.key(CASE)
    await bus.redis.xadd(key, {"x": "1"})
    # what dead processes left: a ws group and a reviews group whose consumers read, then went silent
    for group in ("ws@deadhost-11", "ws-oldversion-10", "analytics-reviews@deadhost-11", "dispatch"):
        await bus.redis.xgroup_create(key, group, id="0")
        await bus.redis.xreadgroup(group, "gone", {key: ">"}, count=1)
    await bus.redis.xgroup_create(key, "ws@newhost-12", id="$")  # being created right now: no consumer yet
    await asyncio.sleep(0.7)
    # a live process of the family, its consumer reading just now
    await bus.redis.xgroup_create(key, "ws@livehost-13", id="$")
    await bus.redis.xreadgroup("ws@livehost-13", "alive", {key: ">"}, count=1)
    sub = bus.subscribe([CASE], group=process_group("ws"), transient=True)
    await sub.ready()
    left = await _groups(bus, CASE)
    assert not {"ws@deadhost-11", "ws-oldversion-10"} & left  # the latter named as earlier versions did
    # another family, a shared group, a group with no consumer yet and a live one are not touched
    assert {"analytics-reviews@deadhost-11", "dispatch", "ws@newhost-12", "ws@livehost-13", sub.group} <= left
