"""The websocket protocol: envelopes, per-client bounded queues, replay on resume, and aiohttp glue.

Envelopes are ``{"type": WsType, "seq": N, "data": {...}}``. Events carry the hub-wide `seq`
(1, 2, ...); control envelopes (hello, pong, resync, error) carry ``seq: 0``.

- on connect the server sends ``hello`` ``{"user", "last_seq", "epoch"}``;
- a reconnecting client sends ``resume`` ``{"last_seq": N}`` as its first message: the server
  replays, in order, every event after N the user may see and only then goes live. Live events
  are held until the client's first message or `resume_grace_s`, so a replay never lands after a
  newer live event; a ``resume`` too late for that, or with N older than the replay ring, or from
  another hub run (N above our seq, or another `epoch`), gets ``resync`` ``{"last_seq"}``: the
  client refetches over REST and continues from that seq;
- ``ping`` gets ``pong``; anything malformed gets an ``error`` ``{"code", "message"}``.

Drop policy: each client has a bounded queue; a client whose queue is full (it stopped reading)
is disconnected with close code 4008 rather than buffered without limit or stalling the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from fusionhub.signaling.bus import Bus, Subscription
from fusionhub.signaling.errors import EventNotSerializable, ProtocolError
from fusionhub.signaling.messages import Topic, WsType
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
CLOSE_GOING_AWAY = 1001

Accepts = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    topic: str
    data: dict[str, Any]
    text: str  # the event envelope, serialised once for every client


def envelope(kind: WsType, data: dict[str, Any], seq: int = 0) -> str:
    """One envelope as JSON text."""
    return json.dumps({"type": kind.value, "seq": seq, "data": data}, separators=(",", ":"))


def parse_client_message(text: str | bytes) -> tuple[WsType, dict[str, Any]]:
    """A client envelope as (type, data); raises ProtocolError when it is not one we accept."""
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("malformed", f"not JSON: {exc}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("malformed", 'an envelope is an object {"type", "seq", "data"}')
    data = msg.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError("malformed", "data must be an object")
    try:
        kind = WsType(msg["type"])
    except ValueError:
        raise ProtocolError("unknown_type", f"unknown message type {msg['type'][:40]!r}") from None
    if kind not in (WsType.RESUME, WsType.PING):
        raise ProtocolError("unknown_type", f"{kind.value} is sent by the server, not the client")
    if kind is WsType.RESUME:
        last = data.get("last_seq")
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise ProtocolError("malformed", "resume needs last_seq, an integer >= 0")
    return kind, data


class _Client:
    """One connection's state: its filter, its bounded queue, and how far it has been served."""

    def __init__(self, ws: web.WebSocketResponse, user: dict[str, Any], accepts: Accepts, *,
                 maxsize: int, start_seq: int) -> None:
        self.ws = ws
        self.user = user
        self.accepts = accepts
        self.queue: asyncio.Queue[_Entry] = asyncio.Queue(maxsize)
        self.start_seq = start_seq  # the hello's last_seq: later events come through the queue
        self.sent_live = False  # a live event (seq > start_seq) has been sent
        self.send_lock = asyncio.Lock()
        self.first_message = asyncio.Event()
        self.killed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code = 1000
        self.close_message = b""
        self._filter_failed = False

    def wants(self, entry: _Entry) -> bool:
        try:
            return bool(self.accepts(entry.topic, entry.data))
        except Exception:
            # a filter that cannot decide hides the event; say so once per connection
            if not self._filter_failed:
                log.warning("event filter failed on %s seq %d", entry.topic, entry.seq, exc_info=True)
                self._filter_failed = True
            return False

    def kill(self, code: int, message: bytes) -> None:
        if not self.killed.done():
            self.close_code, self.close_message = code, message
            self.killed.set_result(None)

    async def send(self, text: str) -> None:
        async with self.send_lock:
            await self.ws.send_str(text)


class WsHub:
    """Fans events out to websocket clients, each with its own filter and bounded queue."""

    def __init__(
        self,
        *,
        replay_size: int = 2000,
        client_queue: int = 256,
        resume_grace_s: float = 0.5,
        close_timeout_s: float = 2.0,
    ) -> None:
        if replay_size < 1 or client_queue < 1:
            raise ValueError("replay_size and client_queue must be at least 1")
        self._ring: deque[_Entry] = deque(maxlen=replay_size)
        self._client_queue = client_queue
        self._resume_grace_s = resume_grace_s
        self._close_timeout_s = close_timeout_s
        self._clients: set[_Client] = set()
        self._seq = 0
        self._closed = False
        # distinguishes this hub run: a seq from another run (restart, other process) means nothing here
        self.epoch = uuid.uuid4().hex
        self.disconnected_slow = 0

    @property
    def last_seq(self) -> int:
        """The seq of the latest event published."""
        return self._seq

    @property
    def client_count(self) -> int:
        """Connected clients being served."""
        return len(self._clients)

    def publish(self, topic: str, data: dict[str, Any]) -> int:
        """Push an event to every client that accepts it; returns its seq. Never waits: call on the
        loop. Raises EventNotSerializable when `data` is not JSON."""
        seq = self._seq + 1
        try:
            text = json.dumps(
                {"type": WsType.EVENT.value, "seq": seq, "data": {"topic": str(topic), "data": data}},
                separators=(",", ":"),
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise EventNotSerializable(f"data of a {topic} event is not JSON: {exc}") from exc
        self._seq = seq
        entry = _Entry(seq, str(topic), data, text)
        self._ring.append(entry)
        for client in list(self._clients):
            if not client.wants(entry):
                continue
            try:
                client.queue.put_nowait(entry)
            except asyncio.QueueFull:
                self._clients.discard(client)
                self.disconnected_slow += 1
                log.warning("disconnecting websocket of user %s: %d events unread", client.user.get("id"),
                            client.queue.qsize())
                client.kill(CLOSE_TOO_SLOW, b"too slow")
        return seq

    def plan_replay(self, last_seq: int, client: _Client) -> list[_Entry] | None:
        """What to send for `resume` {last_seq}: the missed events in order, or None for resync."""
        if last_seq > self._seq:
            return None  # a seq from the future: the hub restarted since
        if last_seq >= client.start_seq:
            return []  # nothing older than this connection; newer events come through the queue
        if not self._ring or self._ring[0].seq > last_seq + 1:
            return None  # part of the gap fell out of the ring
        missed = [e for e in self._ring if last_seq < e.seq <= client.start_seq and client.wants(e)]
        if missed and client.sent_live:
            return None  # newer events went out already: a replay now would arrive out of order
        return missed

    async def serve(
        self, ws: web.WebSocketResponse, *, user: dict[str, Any], accepts: Accepts
    ) -> None:
        """Run one prepared connection until it closes (or the hub closes or drops it)."""
        if self._closed:
            await ws.close(code=CLOSE_GOING_AWAY, message=b"hub shutting down")
            return
        client = _Client(ws, user, accepts, maxsize=self._client_queue, start_seq=self._seq)
        self._clients.add(client)
        tasks: list[asyncio.Task[None]] = []
        try:
            await client.send(envelope(WsType.HELLO, {"user": user, "last_seq": client.start_seq,
                                                      "epoch": self.epoch}))
            tasks = [
                asyncio.create_task(self._pump(client), name="ws-pump"),
                asyncio.create_task(self._read(client), name="ws-read"),
            ]
            await asyncio.wait([*tasks, client.killed], return_when=asyncio.FIRST_COMPLETED)
        except ConnectionError as exc:
            log.debug("websocket of user %s ended early: %s", user.get("id"), exc)
        finally:
            self._clients.discard(client)
            await self._finish(client, tasks)

    async def _finish(self, client: _Client, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                log.error("websocket task failed", exc_info=result)
        try:
            # bounded: a client that stopped reading cannot take the close frame quickly
            async with asyncio.timeout(self._close_timeout_s):
                await client.ws.close(code=client.close_code, message=client.close_message)
        except (TimeoutError, ConnectionError) as exc:
            log.debug("websocket close of user %s not clean: %r", client.user.get("id"), exc)
        finally:
            if not client.finished.done():
                client.finished.set_result(None)

    async def _pump(self, client: _Client) -> None:
        # hold live events until the client spoke first (a resume) or the grace passed
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that races
        # with the inner wait finishing (the client closing right after its resume), and this
        # task then never ends
        try:
            async with asyncio.timeout(self._resume_grace_s):
                await client.first_message.wait()
        except TimeoutError:
            pass
        while True:
            entry = await client.queue.get()
            async with client.send_lock:
                client.sent_live = True
                await client.ws.send_str(entry.text)

    async def _read(self, client: _Client) -> None:
        try:
            async for msg in client.ws:
                if msg.type is WSMsgType.TEXT:
                    await self._handle(client, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await client.send(envelope(WsType.ERROR, {"code": "malformed",
                                                              "message": "binary frames are not used"}))
                client.first_message.set()
        finally:
            client.first_message.set()

    async def _handle(self, client: _Client, text: str) -> None:
        try:
            kind, data = parse_client_message(text)
        except ProtocolError as exc:
            await client.send(envelope(WsType.ERROR, {"code": exc.code, "message": exc.message}))
            return
        if kind is WsType.PING:
            await client.send(envelope(WsType.PONG, data))
            return
        epoch = data.get("epoch")
        async with client.send_lock:  # the pump waits: the replay goes out in one piece, in order
            # planned under the lock: whether a live event went out already is settled here
            plan = None if epoch not in (None, self.epoch) else self.plan_replay(data["last_seq"], client)
            if plan is None:
                await client.ws.send_str(envelope(WsType.RESYNC, {"last_seq": client.start_seq}))
                return
            for entry in plan:
                await client.ws.send_str(entry.text)

    async def close(self) -> None:
        """Disconnect every client (close code 1001) and wait for their connections to end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        clients = list(self._clients)
        for client in clients:
            client.kill(CLOSE_GOING_AWAY, b"hub shutting down")
        if clients:
            await asyncio.wait([c.finished for c in clients], timeout=self._close_timeout_s + 1.0)


class WsBridge:
    """Moves bus events into a WsHub: subscribes in its own group (one per hub process, so every
    process sees every event), publishes each event to the hub, then acks it."""

    def __init__(
        self,
        bus: Bus,
        hub: WsHub,
        topics: Sequence[Topic],
        *,
        group: str,
        consumer: str | None = None,
        transient: bool = False,
    ) -> None:
        self._bus = bus
        self._hub = hub
        self._topics = list(topics)
        self._group = group
        self._consumer = consumer
        self._transient = transient  # the group is this process's alone (bus.process_group)
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (the group exists when this returns) and start forwarding."""
        if self._task is not None:
            return
        self._sub = self._bus.subscribe(
            self._topics, group=self._group, consumer=self._consumer, transient=self._transient
        )
        await self._sub.ready()
        self._task = asyncio.create_task(self._run(self._sub), name=f"ws-bridge-{self._group}")

    async def _run(self, sub: Subscription) -> None:
        try:
            async for event in sub:
                try:
                    self._hub.publish(event.topic.value, event.data)
                except EventNotSerializable:
                    log.error("[%s] event %s of %s is not JSON; skipped", self._group, event.id, event.topic)
                await sub.ack(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("[%s] bus to websocket bridge stopped", self._group)

    async def stop(self) -> None:
        """Stop forwarding and leave the group. Idempotent."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.close()


async def bus_to_ws(
    bus: Bus, hub: WsHub, topics: Sequence[Topic], *, group: str, consumer: str | None = None
) -> WsBridge:
    """A started WsBridge (stop it with `await bridge.stop()`)."""
    bridge = WsBridge(bus, hub, topics, group=group, consumer=consumer)
    await bridge.start()
    return bridge
