"""WsHub over a real aiohttp server on 127.0.0.1 with real aiohttp client websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from fusionhub.signaling.bus import InProcessBus
from fusionhub.signaling.messages import Topic
from fusionhub.signaling.ws import CLOSE_TOO_SLOW, WsBridge, WsHub

Connect = Callable[..., Awaitable[aiohttp.ClientWebSocketResponse]]


def region_filter(user: dict[str, Any]) -> Callable[[str, dict[str, Any]], bool]:
    """Stands in for the console's per-user filter: a user sees their region's events."""

    def accepts(topic: str, data: dict[str, Any]) -> bool:
        return user["region"] == "all" or data.get("region") == user["region"]

    return accepts


class Harness:
    """A hub behind a real server, and a client session connecting to it."""

    def __init__(self, hub: WsHub, url: str, session: aiohttp.ClientSession) -> None:
        self.hub = hub
        self.url = url
        self.session = session

    async def connect(self, user: str = "u1", region: str = "all", **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        return await self.session.ws_connect(f"{self.url}/ws?user={user}&region={region}", **kwargs)


async def start(hub: WsHub) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        user = {"id": request.query["user"], "region": request.query["region"]}
        await hub.serve(ws, user=user, accepts=region_filter(user))
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def harness_factory() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    made: list[tuple[web.AppRunner, WsHub, aiohttp.ClientSession]] = []

    async def make(**hub_kwargs: Any) -> Harness:
        hub_kwargs.setdefault("resume_grace_s", 0.05)
        hub = WsHub(**hub_kwargs)
        runner, url = await start(hub)
        session = aiohttp.ClientSession()
        made.append((runner, hub, session))
        return Harness(hub, url, session)

    yield make
    for runner, hub, session in made:
        await session.close()
        await hub.close()
        await runner.cleanup()


@pytest.fixture
async def harness(harness_factory: Callable[..., Awaitable[Harness]]) -> Harness:
    return await harness_factory()


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type is WSMsgType.TEXT, msg
    parsed: dict[str, Any] = json.loads(msg.data)
    return parsed


async def recv_events(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(got) < n:
            msg = await recv(ws, timeout)
            if msg["type"] == "event":
                got.append(msg)
    return got


async def no_more(ws: aiohttp.ClientWebSocketResponse, wait: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=wait)


def region_of(n: int) -> str:
    return "west" if n % 3 == 0 else "east"


async def test_hello_then_events_in_seq_order(harness: Harness) -> None:
    for n in range(3):
        harness.hub.publish(Topic.CASE_CHANGED, {"n": n})
    ws = await harness.connect("alice")
    hello = await recv(ws)
    assert hello["type"] == "hello"
    assert hello["data"]["user"] == {"id": "alice", "region": "all"}
    assert hello["data"]["last_seq"] == 3
    for n in range(3, 103):
        harness.hub.publish(Topic.CASE_CHANGED if n % 2 else Topic.FLAG_CREATED, {"n": n})
    events = await recv_events(ws, 100)
    assert [e["seq"] for e in events] == list(range(4, 104))
    assert [e["data"]["data"]["n"] for e in events] == list(range(3, 103))
    assert events[0]["data"]["topic"] == "dispatch.case_changed"  # n = 3
    assert events[1]["data"]["topic"] == "dispatch.flag_created"
    await no_more(ws)
    await ws.close()


async def test_filter_hides_what_the_user_may_not_see(harness: Harness) -> None:
    west = await harness.connect("w", "west")
    east = await harness.connect("e", "east")
    await recv(west)
    await recv(east)
    for n in range(30):
        harness.hub.publish(Topic.CASE_CHANGED, {"n": n, "region": region_of(n)})
    seen_west = await recv_events(west, 10)
    seen_east = await recv_events(east, 20)
    assert [e["data"]["data"]["n"] for e in seen_west] == [n for n in range(30) if region_of(n) == "west"]
    assert [e["data"]["data"]["n"] for e in seen_east] == [n for n in range(30) if region_of(n) == "east"]
    assert [e["seq"] for e in seen_west] == [n + 1 for n in range(30) if region_of(n) == "west"]
    await no_more(west)
    await no_more(east)


async def test_resume_replays_exactly_the_missed_events(harness: Harness) -> None:
    hub = harness.hub
    ws = await harness.connect("w", "west")
    await recv(ws)
    for n in range(6):
        hub.publish(Topic.CASE_CHANGED, {"n": n, "region": region_of(n)})
    before = await recv_events(ws, 2)  # n = 0, 3
    last_seq = before[-1]["seq"]
    await ws.close()
    for n in range(6, 20):  # missed while away: some theirs, some not
        hub.publish(Topic.CASE_CHANGED, {"n": n, "region": region_of(n)})
    ws = await harness.connect("w", "west")
    await ws.send_json({"type": "resume", "seq": 0, "data": {"last_seq": last_seq}})
    hello = await recv(ws)
    assert hello["data"]["last_seq"] == 20
    for n in range(20, 26):  # live again
        hub.publish(Topic.CASE_CHANGED, {"n": n, "region": region_of(n)})
    expected = [n for n in range(6, 26) if region_of(n) == "west"]
    events = await recv_events(ws, len(expected))
    assert [e["data"]["data"]["n"] for e in events] == expected  # in order, none twice, none lost
    assert [e["seq"] for e in events] == [n + 1 for n in expected]
    await no_more(ws)


async def test_resume_older_than_the_ring_gets_resync(harness_factory: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness_factory(replay_size=10)
    for n in range(30):
        h.hub.publish(Topic.CASE_CHANGED, {"n": n})
    ws = await h.connect()
    await ws.send_json({"type": "resume", "data": {"last_seq": 5}})
    assert (await recv(ws))["type"] == "hello"
    resync = await recv(ws)
    assert resync == {"type": "resync", "seq": 0, "data": {"last_seq": 30}}
    h.hub.publish(Topic.CASE_CHANGED, {"n": 30})
    assert [e["seq"] for e in await recv_events(ws, 1)] == [31]  # live from there on
    # the ring now holds seqs 22..31: a client that saw 21 misses nothing the ring lost
    ws2 = await h.connect()
    await ws2.send_json({"type": "resume", "data": {"last_seq": 21}})
    await recv(ws2)
    assert [e["seq"] for e in await recv_events(ws2, 10)] == list(range(22, 32))
    ws3 = await h.connect()
    await ws3.send_json({"type": "resume", "data": {"last_seq": 20}})
    await recv(ws3)
    assert (await recv(ws3))["type"] == "resync"


async def test_resume_from_another_hub_run_gets_resync(harness: Harness) -> None:
    harness.hub.publish(Topic.CASE_CHANGED, {"n": 0})
    ws = await harness.connect()
    await ws.send_json({"type": "resume", "data": {"last_seq": 500}})  # the hub restarted since
    await recv(ws)
    assert (await recv(ws))["type"] == "resync"
    ws2 = await harness.connect()
    await ws2.send_json({"type": "resume", "data": {"last_seq": 0, "epoch": "another-run"}})
    await recv(ws2)
    assert (await recv(ws2))["type"] == "resync"


async def test_resume_after_live_events_went_out_gets_resync_not_disorder(harness: Harness) -> None:
    hub = harness.hub
    for n in range(5):
        hub.publish(Topic.CASE_CHANGED, {"n": n})
    ws = await harness.connect()
    await recv(ws)
    await asyncio.sleep(0.1)  # past the resume grace: live now
    hub.publish(Topic.CASE_CHANGED, {"n": 5})
    assert [e["seq"] for e in await recv_events(ws, 1)] == [6]
    await ws.send_json({"type": "resume", "data": {"last_seq": 2}})
    assert await recv(ws) == {"type": "resync", "seq": 0, "data": {"last_seq": 5}}


async def test_a_client_that_stops_reading_is_dropped_while_others_get_everything(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness_factory(client_queue=64)
    hub = h.hub
    slow = await h.connect("slow")  # will not read until it has been dropped
    healthy = await h.connect("healthy")
    await recv(healthy)
    received: list[int] = []

    async def read_all() -> None:
        while True:
            msg = await recv(healthy, 10)
            if msg["type"] == "event":
                received.append(msg["seq"])

    reader = asyncio.create_task(read_all())
    blob = "x" * 16_000
    published = 0
    async with asyncio.timeout(60):
        while hub.client_count == 2:
            for _ in range(20):
                hub.publish(Topic.CAMERA_STATUS, {"blob": blob})
                published += 1
            while published - len(received) > 40:  # pace to the healthy client, not the slow one
                await asyncio.sleep(0.001)
    assert hub.disconnected_slow == 1
    for _ in range(20):  # the healthy client carries on
        hub.publish(Topic.CAMERA_STATUS, {"blob": blob})
        published += 1
    async with asyncio.timeout(10):
        while len(received) < published:
            await asyncio.sleep(0.01)
    reader.cancel()
    assert received == list(range(1, published + 1))
    # the slow client finds what was sent before it was dropped, in order, then close code 4008
    seqs: list[int] = []
    async with asyncio.timeout(20):
        async for msg in slow:
            data = json.loads(msg.data)
            if data["type"] == "event":
                seqs.append(data["seq"])
    assert slow.close_code == CLOSE_TOO_SLOW
    assert seqs == list(range(1, len(seqs) + 1))
    assert 0 < len(seqs) < published


async def test_malformed_messages_get_error_and_the_connection_stays(harness: Harness) -> None:
    ws = await harness.connect()
    await recv(ws)
    await ws.send_str("{this is not json")
    err = await recv(ws)
    assert err["type"] == "error" and err["data"]["code"] == "malformed"
    await ws.send_json({"type": "fly"})
    assert (await recv(ws))["data"]["code"] == "unknown_type"
    await ws.send_bytes(b"\x00\x01")
    assert (await recv(ws))["type"] == "error"
    await ws.send_json({"type": "ping", "data": {"t": 1}})
    assert await recv(ws) == {"type": "pong", "seq": 0, "data": {"t": 1}}
    harness.hub.publish(Topic.TASK_CHANGED, {"n": 1})
    assert [e["data"]["data"] for e in await recv_events(ws, 1)] == [{"n": 1}]


async def test_close_disconnects_everyone_with_1001(harness_factory: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness_factory()
    clients = [await h.connect(f"u{i}") for i in range(3)]
    for ws in clients:
        await recv(ws)
    readers = [asyncio.create_task(ws.receive(timeout=3)) for ws in clients]  # browsers answer a close
    await asyncio.wait_for(h.hub.close(), 3)
    await h.hub.close()
    for ws, reader in zip(clients, readers):
        assert (await reader).type is WSMsgType.CLOSE
        assert ws.close_code == 1001
    late = await h.connect()
    assert (await late.receive(timeout=2)).type is WSMsgType.CLOSE
    assert late.close_code == 1001
    assert h.hub.client_count == 0


async def test_bridge_moves_bus_events_to_websocket_clients(harness: Harness) -> None:
    bus = InProcessBus()
    bridge = WsBridge(bus, harness.hub, [Topic.CASE_CHANGED, Topic.FLAG_CREATED], group="ws-test-1")
    await bridge.start()
    ws = await harness.connect("w", "west")
    await recv(ws)
    await bus.publish(Topic.CASE_CHANGED, {"id": 1, "region": "west"})
    await bus.publish(Topic.FLAG_CREATED, {"id": 2, "region": "east"})
    await bus.publish(Topic.TASK_CHANGED, {"id": 3, "region": "west"})  # not bridged
    await bus.publish(Topic.FLAG_CREATED, {"id": 4, "region": "west"})
    events = await recv_events(ws, 2)
    assert [(e["data"]["topic"], e["data"]["data"]["id"]) for e in events] == [
        ("dispatch.case_changed", 1),
        ("dispatch.flag_created", 4),
    ]
    assert harness.hub.last_seq == 3
    assert bus.backlog("ws-test-1") == 0  # every event acked once in the hub
    await bridge.stop()
    await bridge.stop()
    await bus.close()
