"""The event bus on Redis Streams, so several hub processes share one bus.

One stream per topic (``{prefix}{topic}``), trimmed with an approximate MAXLEN. A group is a Redis
consumer group created at the stream's end ("$"), so it sees only what is published after it
exists. Reads block for a bounded time so closing is prompt; acks are XACKs; events left pending
by a consumer that died are claimed (XAUTOCLAIM) by a live consumer of the group once idle for
`claim_idle_s`. Connection errors are logged (a warning once, then debug) and retried with
exponential backoff; nothing busy-loops.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import os
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fusionhub.signaling.bus import Bus, Event, Subscription, encode_data
from fusionhub.signaling.errors import BusClosed, BusUnavailable
from fusionhub.signaling.messages import Topic
from fusionhub.tasks import raise_if_cancel_requested

log = logging.getLogger(__name__)

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
_CLOSE_GRACE_S = 1.0  # longest close() spends tidying up on Redis


def redis_location(url: str) -> str:
    """host:port/db of a Redis URL without its credentials, for log lines."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


class _Backoff:
    """Exponential retry delay; warns on the first failure of a streak, then logs at debug."""

    def __init__(self, what: str, *, first: float = 0.1, cap: float = 5.0) -> None:
        self._what = what
        self._first = first
        self._cap = cap
        self._delay = first
        self._failing = False

    async def failed(self, exc: BaseException) -> None:
        if not self._failing:
            log.warning("%s: %s; retrying with backoff", self._what, exc)
            self._failing = True
        else:
            log.debug("%s still failing: %s; next try in %.1f s", self._what, exc, self._delay)
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, self._cap)

    def ok(self) -> None:
        if self._failing:
            log.info("%s: working again", self._what)
        self._failing = False
        self._delay = self._first


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _per_stream(reply: Any) -> list[tuple[str, Any]]:
    """An XREADGROUP reply as (stream key, entries) pairs (RESP2 lists or RESP3 maps)."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(_text(stream), entries) for stream, entries in pairs]


class RedisStreamBus(Bus):
    """The bus on Redis Streams (consumer groups, acknowledgements, claiming from dead consumers).

    Publishing retries while Redis is unreachable, for up to `publish_timeout_s`, then raises
    BusUnavailable. A retried XADD whose first attempt did reach Redis may publish twice: delivery
    is at least once, consumers are idempotent.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        stream_prefix: str = "fusionhub:",
        maxlen: int = 100_000,
        claim_idle_s: float = 60.0,
        read_block_s: float = 1.0,
        read_batch: int = 100,
        publish_timeout_s: float = 30.0,
        stale_group_s: float = 3600.0,
    ) -> None:
        self._where = redis_location(redis_url)
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            redis_url,
            decode_responses=False,
            socket_connect_timeout=5.0,
            # longer than a blocking read, so only a dead link times out
            socket_timeout=read_block_s + 10.0,
        )
        self.stream_prefix = stream_prefix
        self.maxlen = maxlen
        self.claim_idle_s = claim_idle_s
        self.read_block_s = read_block_s
        self.read_batch = read_batch
        self.publish_timeout_s = publish_timeout_s
        # a transient group (process_group) whose every consumer has been idle this long belonged
        # to a process that died without closing it: the next transient subscriber of its family
        # removes it (a live consumer blocked in XREADGROUP is never idle longer than read_block_s)
        self.stale_group_s = stale_group_s
        self._subs: set[_RedisSubscription] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    @property
    def where(self) -> str:
        """Where Redis is, without credentials (for log lines)."""
        return self._where

    @property
    def redis(self) -> aioredis.Redis:
        """The client (shared with the subscriptions)."""
        return self._redis

    def key(self, topic: Topic) -> str:
        """The stream key of a topic."""
        return f"{self.stream_prefix}{topic.value}"

    async def publish(self, topic: Topic, data: Mapping[str, Any]) -> Event:
        if self._closed:
            raise BusClosed("the bus is closed")
        topic = Topic(topic)
        body = encode_data(topic, data)
        ts = time.time()
        deadline = time.monotonic() + self.publish_timeout_s
        backoff = _Backoff(f"publishing to Redis at {self._where}")
        while True:
            try:
                entry_id = await self._redis.xadd(
                    self.key(topic), {"d": body, "ts": repr(ts)}, maxlen=self.maxlen, approximate=True
                )
                break
            except _TRANSIENT as exc:
                if self._closed:
                    raise BusClosed("the bus closed while publishing") from exc
                if time.monotonic() >= deadline:
                    raise BusUnavailable(
                        f"Redis at {self._where} unreachable for {self.publish_timeout_s:g} s"
                    ) from exc
                await backoff.failed(exc)
        backoff.ok()
        raise_if_cancel_requested()  # redis-py may have dropped a cancel (see fusionhub.tasks)
        return Event(id=_text(entry_id), topic=topic, data=json.loads(body), ts=ts)

    def subscribe(
        self, topics: Sequence[Topic], *, group: str, consumer: str | None = None, transient: bool = False
    ) -> Subscription:
        if self._closed:
            raise BusClosed("the bus is closed")
        if not topics:
            raise ValueError("subscribe to at least one topic")
        name = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        sub = _RedisSubscription(self, [Topic(t) for t in topics], group, name, transient=transient)
        self._subs.add(sub)
        return sub

    def _forget(self, sub: _RedisSubscription) -> None:
        self._subs.discard(sub)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subs):
            sub.mark_closed()
        self._subs.clear()
        # disconnects in-use connections too: a read blocked in another task ends now
        await self._redis.aclose()


class _RedisSubscription(Subscription):
    """One consumer of a Redis consumer group over one stream per topic."""

    def __init__(
        self, bus: RedisStreamBus, topics: list[Topic], group: str, consumer: str, *, transient: bool = False
    ) -> None:
        self._bus = bus
        self._r = bus.redis
        self._topics = {bus.key(t): t for t in topics}
        self.group = group
        self.consumer = consumer
        self.transient = transient
        self._buffer: deque[Event] = deque()
        self._unacked: set[tuple[str, str]] = set()  # (key, id) handed out or buffered, not acked
        self._ready = False
        # our own pending entries first (a consumer restarting under a stable name), then new ones
        self._recover_from: dict[str, str] = {key: "0-0" for key in self._topics}
        self._claim_every = min(max(bus.claim_idle_s / 4, 0.1), 30.0)
        self._next_claim = 0.0
        self._closed = False
        self._left = False
        self._backoff = _Backoff(f"[{group}/{consumer}] reading from Redis at {bus.where}")

    def mark_closed(self) -> None:
        self._closed = True

    async def ready(self) -> None:
        backoff = _Backoff(f"[{self.group}] creating the consumer group")
        while not self._ready:
            raise_if_cancel_requested()
            if self._closed or self._bus.closed:
                raise BusClosed("the subscription is closed")
            try:
                await self._ensure_group()
            except _TRANSIENT as exc:
                await backoff.failed(exc)
        backoff.ok()
        if self.transient:
            try:
                await self._remove_stale_siblings()
            except (*_TRANSIENT, ResponseError) as exc:  # tidying only: never in the way of reading
                log.debug("[%s] could not look for stale groups: %s", self.group, exc)

    async def _remove_stale_siblings(self) -> None:
        """Destroy the groups of this one's family (`ws@...`) whose consumers have all been idle
        longer than the bus's `stale_group_s`: left by processes that died without closing them.
        A group with no consumer at all is left alone (it may be one being created right now).
        Earlier versions named these groups `ws-HOST-PID`: those count as the family too."""
        family, at, _ = self.group.partition("@")
        if not at:
            return
        legacy = re.compile(rf"{re.escape(family)}-.+-\d+")
        limit_ms = self._bus.stale_group_s * 1000
        for key in self._topics:
            for info in await self._r.xinfo_groups(key):
                name = _text(info["name"])
                if name == self.group or not (name.startswith(f"{family}@") or legacy.fullmatch(name)):
                    continue
                consumers = await self._r.xinfo_consumers(key, name)
                if consumers and all(int(c["idle"]) > limit_ms for c in consumers):
                    await self._r.xgroup_destroy(key, name)
                    idle_h = min(int(c["idle"]) for c in consumers) / 3_600_000
                    log.info("removed the consumer group %s of %s: idle for %.1f h (its process is gone)", name, key, idle_h)

    async def _ensure_group(self) -> None:
        for key in self._topics:
            try:
                await self._r.xgroup_create(key, self.group, id="$", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # the group exists already: what we want
                    raise
        self._ready = True

    async def __anext__(self) -> Event:
        while True:
            # a reader cancelled as a command went out would otherwise read on for ever
            raise_if_cancel_requested()
            if self._closed or self._bus.closed:
                raise StopAsyncIteration
            if self._buffer:
                return self._buffer.popleft()
            try:
                if not self._ready:
                    await self._ensure_group()
                if self._recover_from:
                    await self._recover()
                elif time.monotonic() >= self._next_claim:
                    await self._claim()
                    self._next_claim = time.monotonic() + self._claim_every
                if not self._buffer and not self._recover_from:
                    await self._read_new()
                self._backoff.ok()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # the stream or group vanished (Redis restarted empty, key deleted): recreate
                    self._ready = False
                    await self._backoff.failed(exc)  # recreated on the next turn, never in a tight loop
                    continue
                if self._closed or self._bus.closed:
                    raise StopAsyncIteration from None
                await self._backoff.failed(exc)
            except _TRANSIENT as exc:
                if self._closed or self._bus.closed:
                    raise StopAsyncIteration from None
                await self._backoff.failed(exc)

    async def _read_new(self) -> None:
        streams: dict[Any, Any] = {key: ">" for key in self._topics}
        reply: Any = await self._r.xreadgroup(
            self.group,
            self.consumer,
            streams,
            count=self._bus.read_batch,
            block=max(1, int(self._bus.read_block_s * 1000)),
        )
        await self._absorb(_per_stream(reply))

    async def _recover(self) -> None:
        streams: dict[Any, Any] = dict(self._recover_from)
        reply: Any = await self._r.xreadgroup(self.group, self.consumer, streams, count=self._bus.read_batch)
        per_stream = _per_stream(reply)
        seen = dict(per_stream)
        for key in list(self._recover_from):
            entries = seen.get(key) or []
            if entries:
                self._recover_from[key] = _text(entries[-1][0])
            else:
                del self._recover_from[key]
        await self._absorb(per_stream)

    async def _claim(self) -> None:
        idle_ms = int(self._bus.claim_idle_s * 1000)
        for key in self._topics:
            reply: Any = await self._r.xautoclaim(
                key, self.group, self.consumer, idle_ms, "0-0", count=self._bus.read_batch
            )
            entries = reply[1] if len(reply) > 1 else []
            fresh = [e for e in entries if (key, _text(e[0])) not in self._unacked]
            if fresh:
                log.info(
                    "[%s/%s] claimed %d events of %s idle over %g s (a consumer went away)",
                    self.group,
                    self.consumer,
                    len(fresh),
                    key,
                    self._bus.claim_idle_s,
                )
                await self._absorb([(key, fresh)])

    async def _absorb(self, reply: Sequence[tuple[str, Any]]) -> None:
        """Decode a read or claim into the buffer; unreadable entries are logged and acked."""
        per_stream: list[list[Event]] = []
        bad: list[tuple[str, str]] = []
        for key, entries in reply:
            topic = self._topics.get(key)
            events: list[Event] = []
            per_stream.append(events)
            for raw_id, fields in entries:
                entry_id = _text(raw_id)
                event = self._decode(key, topic, entry_id, fields)
                if event is None:
                    bad.append((key, entry_id))
                    continue
                self._unacked.add((key, entry_id))
                events.append(event)
        # streams come back one after the other: interleave them by time of publication (Redis
        # millisecond, then the publisher's clock), keeping each stream's own order
        self._buffer.extend(heapq.merge(*per_stream, key=lambda e: (_id_key(e.id)[0], e.ts)))
        for key, entry_id in bad:
            await self._xack(key, entry_id)

    def _decode(self, key: str, topic: Topic | None, entry_id: str, fields: Any) -> Event | None:
        try:
            if topic is None:
                raise ValueError(f"unexpected stream {key}")
            if not fields:
                # trimmed by MAXLEN before anyone acked it: lost, and said so loudly
                raise ValueError("entry was trimmed from the stream before it was handled")
            data = json.loads(fields[b"d"])
            if not isinstance(data, dict):
                raise ValueError("data is not a JSON object")
            return Event(id=entry_id, topic=topic, data=data, ts=float(fields[b"ts"]))
        except (KeyError, ValueError, TypeError) as exc:
            log.error(
                "[%s/%s] skipping unreadable entry %s of %s: %s", self.group, self.consumer, entry_id, key, exc
            )
            return None

    async def ack(self, event: Event) -> None:
        key = self._bus.key(event.topic)
        self._unacked.discard((key, event.id))
        if self._bus.closed:
            return  # it stays pending and another consumer claims it: nothing lost
        await self._xack(key, event.id)

    async def _xack(self, key: str, entry_id: str) -> None:
        backoff = _Backoff(f"[{self.group}/{self.consumer}] acking")
        deadline = time.monotonic() + self._bus.publish_timeout_s
        while True:
            raise_if_cancel_requested()
            try:
                await self._r.xack(key, self.group, entry_id)
                raise_if_cancel_requested()
                return
            except _TRANSIENT as exc:
                if self._bus.closed or time.monotonic() >= deadline:
                    # left pending: claimed and delivered again later, so not lost, only late
                    log.warning("[%s/%s] could not ack %s: %s", self.group, self.consumer, entry_id, exc)
                    return
                await backoff.failed(exc)

    async def close(self) -> None:
        if self._left:
            return
        self._left = True
        self._closed = True
        self._bus._forget(self)
        if self._bus.closed or not self._ready:
            return
        try:
            async with asyncio.timeout(_CLOSE_GRACE_S):
                if self.transient:  # nobody else reads this process's group: it goes with what it held
                    for key in self._topics:
                        await self._r.xgroup_destroy(key, self.group)
                else:
                    await self._leave_group()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("[%s/%s] could not leave the group tidily: %s", self.group, self.consumer, exc)

    async def _leave_group(self) -> None:
        """Forget this consumer's name in the group when it holds nothing; with unacked events it
        stays, so another consumer can claim them once idle."""
        for key in self._topics:
            pending = await self._r.xpending_range(key, self.group, "-", "+", 1, consumername=self.consumer)
            if not pending:
                await self._r.xgroup_delconsumer(key, self.group, self.consumer)
