"""The event bus: topics in, consumer groups out, nothing dropped silently.

Two implementations share these semantics:

- `InProcessBus`, the embedded default (one hub process);
- `fusionhub.signaling.redisbus.RedisStreamBus`, Redis Streams, for several hub processes.

Semantics:

- a *group* is a consumer group: each event published on a topic reaches ONE consumer of each
  group subscribed to that topic. Hub processes share work by using the same group ("dispatch");
  a broadcaster (the websocket bridge) uses a group of its own process (``process_group("ws")``,
  ``"ws@HOST-PID"``), subscribed ``transient=True``: the group is destroyed when that
  subscription closes, and on Redis one left by a process that died is removed by the next
  transient subscriber of the same family once all its consumers have been idle for an hour;
- delivery is at least once: an event stays the group's until a consumer acks it; an event not
  acked is delivered again (in-process: to the group's next consumer once the subscription that
  took it closes; Redis: claimed by another consumer once it has been idle long enough).
  Consumers must therefore be idempotent, and must ack every event they take;
- a group starts at its first subscription: events published before it existed are not
  delivered to it. A group outlives its subscriptions: what is published while it has no
  consumer waits for its next one;
- event data is JSON (checked on publish on both buses) and must be treated as read-only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import count
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fusionhub.signaling.errors import BusClosed, EventNotSerializable
from fusionhub.signaling.messages import Topic

if TYPE_CHECKING:
    from fusionhub.signaling.config import BusConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One published event: `id` is unique per topic on the bus that carried it."""

    id: str
    topic: Topic
    data: dict[str, Any]
    ts: float


def encode_data(topic: Topic, data: Mapping[str, Any]) -> str:
    """Event data as compact JSON; raises EventNotSerializable for anything JSON cannot carry."""
    try:
        return json.dumps(dict(data), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EventNotSerializable(f"data of a {topic} event is not JSON: {exc}") from exc


class Subscription(AsyncIterator[Event], ABC):
    """A consumer in a group: iterate to receive events, ack each once handled.

    Iteration ends when the subscription or its bus is closed. Usable as ``async with``.
    """

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    @abstractmethod
    async def __anext__(self) -> Event:
        """The next event for this consumer; waits for one."""

    @abstractmethod
    async def ack(self, event: Event) -> None:
        """The event is handled: it will not be delivered again. Acking twice is harmless."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming; unacked events go back to the group. Idempotent."""

    async def ready(self) -> None:
        """Returns once the group exists on the bus, so events published from now on reach it.

        In-process the group exists as soon as `subscribe` returns. On Redis the group is
        created on the first read; await this before relying on a brand-new group.
        """

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Bus(ABC):
    """Publishes events on topics and hands them to consumer groups."""

    @abstractmethod
    async def publish(self, topic: Topic, data: Mapping[str, Any]) -> Event:
        """Publish one event. May wait (backpressure); raises BusClosed, EventNotSerializable,
        and on Redis BusUnavailable when Redis stays unreachable."""

    @abstractmethod
    def subscribe(
        self, topics: Sequence[Topic], *, group: str, consumer: str | None = None, transient: bool = False
    ) -> Subscription:
        """A new consumer of `group` for `topics`; raises BusClosed after close(). `transient`: the
        group is this process's alone (`process_group`) and goes when the subscription closes."""

    @abstractmethod
    async def close(self) -> None:
        """Release the bus; ends every subscription's iteration. Idempotent."""


def process_group(family: str) -> str:
    """The name of a consumer group of this process alone: `family@HOST-PID` (subscribe it with
    `transient=True`; the family names its kind, e.g. "ws", and must not contain "@")."""
    if not family or "@" in family:
        raise ValueError(f"bad group family {family!r}")
    return f"{family}@{socket.gethostname()[:64]}-{os.getpid()}"


class _Group:
    """One in-process consumer group: a bounded queue shared by its consumers.

    `in_flight` counts queued events plus events delivered and not yet acked, so memory stays
    bounded even when a consumer sits on events; when it reaches `capacity` publishers wait,
    in arrival order, and the event is enqueued for them as soon as an ack frees room.
    """

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.topics: set[Topic] = set()
        self.queue: deque[Event] = deque()
        self.in_flight = 0
        self.closed = False
        self.dropped = False  # a transient group whose subscription closed: takes nothing more
        self._item_waiters: list[asyncio.Future[None]] = []
        self._space_waiters: deque[tuple[Event, asyncio.Future[None]]] = deque()

    async def put(self, event: Event) -> None:
        if self.dropped:
            return
        if self.closed:
            raise BusClosed("the bus is closed")
        if self.in_flight < self.capacity and not self._space_waiters:
            self._append(event)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._space_waiters.append((event, fut))
        # resolved by _make_room once the event is in the queue, or failed with BusClosed;
        # a cancelled publisher's entry is skipped there, so its event is never enqueued
        await fut

    def _append(self, event: Event) -> None:
        self.queue.append(event)
        self.in_flight += 1
        self.wake_consumers()

    def take(self, topics: frozenset[Topic]) -> Event | None:
        """The oldest queued event among `topics`, removed from the queue (still in flight)."""
        for i, event in enumerate(self.queue):
            if event.topic in topics:
                del self.queue[i]
                return event
        return None

    def done(self, n: int) -> None:
        """`n` events were acked: room for waiting publishers."""
        self.in_flight -= n
        while self._space_waiters and self.in_flight < self.capacity:
            event, fut = self._space_waiters.popleft()
            if not fut.done():
                self._append(event)
                fut.set_result(None)

    def requeue(self, events: list[Event]) -> None:
        """Events taken but not acked go back to the front, oldest first."""
        self.queue.extendleft(reversed(events))
        self.wake_consumers()

    async def wait_item(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._item_waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._item_waiters:
                self._item_waiters.remove(fut)

    def wake_consumers(self) -> None:
        waiters, self._item_waiters = self._item_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def drop(self) -> None:
        """Nobody will read this group again: forget its events; waiting publishers go on."""
        self.dropped = self.closed = True
        self.queue.clear()
        while self._space_waiters:
            _, fut = self._space_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
        self.wake_consumers()

    def close(self) -> None:
        self.closed = True
        while self._space_waiters:
            _, fut = self._space_waiters.popleft()
            if not fut.done():
                fut.set_exception(BusClosed("the bus closed while publishing"))
        self.wake_consumers()


class _InProcessSubscription(Subscription):
    def __init__(
        self, bus: InProcessBus, group: _Group, topics: frozenset[Topic], consumer: str, transient: bool = False
    ) -> None:
        self._bus = bus
        self._group = group
        self.topics = topics
        self.consumer = consumer
        self.transient = transient
        self._pending: dict[str, Event] = {}  # delivered, not acked; insertion = delivery order
        self._closed = False

    @property
    def group(self) -> str:
        """The consumer group's name."""
        return self._group.name

    async def __anext__(self) -> Event:
        while True:
            if self._closed or self._group.closed:
                raise StopAsyncIteration
            event = self._group.take(self.topics)
            if event is not None:
                self._pending[event.id] = event
                return event
            await self._group.wait_item()

    async def ack(self, event: Event) -> None:
        if self._pending.pop(event.id, None) is not None:
            self._group.done(1)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._forget(self)
        if self._pending and not self._group.closed:
            log.debug(
                "[%s/%s] closing with %d unacked events: back to the group",
                self._group.name,
                self.consumer,
                len(self._pending),
            )
            self._group.requeue(list(self._pending.values()))
        self._pending.clear()
        self._group.wake_consumers()  # ends a pending __anext__ of this subscription
        if self.transient:
            self._bus._drop_if_unused(self._group)


class InProcessBus(Bus):
    """The embedded bus: groups live in this process; publish waits when a group is full.

    Backpressure: each group holds at most `group_queue_size` events in flight (queued plus
    delivered and not acked). A publish to a full group waits until a consumer of that group
    acks, so a stalled or missing consumer slows publishers down instead of losing events.
    """

    def __init__(self, *, group_queue_size: int = 10_000) -> None:
        if group_queue_size < 1:
            raise ValueError("group_queue_size must be at least 1")
        self._capacity = group_queue_size
        self._groups: dict[str, _Group] = {}
        self._subs: set[_InProcessSubscription] = set()
        self._ids = count(1)
        self._consumer_ids = count(1)
        self._closed = False

    async def publish(self, topic: Topic, data: Mapping[str, Any]) -> Event:
        if self._closed:
            raise BusClosed("the bus is closed")
        topic = Topic(topic)
        # a JSON round trip: the same code must behave the same on Redis, and consumers
        # get data no publisher can still mutate
        event = Event(
            id=str(next(self._ids)), topic=topic, data=json.loads(encode_data(topic, data)), ts=time.time()
        )
        for group in [g for g in self._groups.values() if topic in g.topics]:
            await group.put(event)
        return event

    def subscribe(
        self, topics: Sequence[Topic], *, group: str, consumer: str | None = None, transient: bool = False
    ) -> Subscription:
        if self._closed:
            raise BusClosed("the bus is closed")
        if not topics:
            raise ValueError("subscribe to at least one topic")
        wanted = frozenset(Topic(t) for t in topics)
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _Group(group, self._capacity)
        state.topics |= wanted
        sub = _InProcessSubscription(
            self, state, wanted, consumer or f"{group}-{next(self._consumer_ids)}", transient
        )
        self._subs.add(sub)
        return sub

    def _forget(self, sub: _InProcessSubscription) -> None:
        self._subs.discard(sub)

    def _drop_if_unused(self, group: _Group) -> None:
        """A transient group with no subscription left goes, with what it still held."""
        if self._groups.get(group.name) is group and not any(s.group == group.name for s in self._subs):
            del self._groups[group.name]
            group.drop()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for group in self._groups.values():
            group.close()
        for sub in list(self._subs):
            await sub.close()

    def backlog(self, group: str) -> int:
        """Events the group holds (queued plus unacked): for health pages and tests."""
        state = self._groups.get(group)
        return 0 if state is None else state.in_flight


def create_bus(config: BusConfig) -> Bus:
    """The bus the config asks for: Redis Streams when `redis_url` is set, else in-process."""
    if config.redis_url:
        from fusionhub.signaling.redisbus import RedisStreamBus  # only scale-out needs redis

        return RedisStreamBus(
            config.redis_url,
            stream_prefix=config.stream_prefix,
            maxlen=config.stream_maxlen,
            claim_idle_s=config.claim_idle_s,
            read_block_s=config.read_block_s,
            read_batch=config.read_batch,
            publish_timeout_s=config.publish_timeout_s,
        )
    return InProcessBus(group_queue_size=config.group_queue_size)
