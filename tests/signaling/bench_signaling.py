"""Throughput of the signaling package (not a test: run `python -m tests.signaling.bench_signaling`).

Prints events/s for InProcessBus, RedisStreamBus (needs Redis on 127.0.0.1:6379) and WsHub
fan-out to 50 websocket clients, each next to a named baseline measured in the same process.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from fusionhub.signaling.bus import Bus, InProcessBus
from fusionhub.signaling.messages import Topic
from fusionhub.signaling.redisbus import RedisStreamBus
from fusionhub.signaling.ws import WsHub

DATA = {"camera_id": 1, "state": "online", "reason": None, "since": 1.0, "region": "demo"}


def line(name: str, n: int, seconds: float, baseline: tuple[str, float] | None = None) -> float:
    rate = n / seconds
    extra = f"  ({rate / baseline[1]:.2f}x {baseline[0]})" if baseline else ""
    print(f"{name:<48} {rate:>12,.0f} /s{extra}")
    return rate


async def bus_roundtrip(bus: Bus, n: int) -> float:
    """Publish n events while one consumer takes and acks them; seconds until all acked."""
    sub = bus.subscribe([Topic.CAMERA_STATUS], group="bench")
    await sub.ready()
    done = asyncio.Event()

    async def consume() -> None:
        count = 0
        async for event in sub:
            await sub.ack(event)
            count += 1
            if count == n:
                done.set()
                return

    consumer = asyncio.create_task(consume())
    started = time.perf_counter()
    for _ in range(n):
        await bus.publish(Topic.CAMERA_STATUS, DATA)
    await done.wait()
    elapsed = time.perf_counter() - started
    await consumer
    await sub.close()
    return elapsed


async def queue_baseline(n: int) -> float:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(10_000)

    async def consume() -> None:
        for _ in range(n):
            await queue.get()

    consumer = asyncio.create_task(consume())
    started = time.perf_counter()
    for _ in range(n):
        await queue.put(json.loads(json.dumps(DATA)))
    await consumer
    return time.perf_counter() - started


async def bench_inprocess(n: int = 50_000) -> None:
    base = line("asyncio.Queue + JSON copy (baseline)", n, await queue_baseline(n))
    bus = InProcessBus()
    line("InProcessBus publish -> consume -> ack", n, await bus_roundtrip(bus, n), ("asyncio.Queue", base))
    await bus.close()


async def bench_redis(n: int = 10_000) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    raw = aioredis.Redis()
    started = time.perf_counter()
    for _ in range(n):
        await raw.xadd(f"{prefix}raw", {"d": json.dumps(DATA)})
    base = line("raw XADD loop (baseline)", n, time.perf_counter() - started)
    bus = RedisStreamBus("redis://127.0.0.1:6379/0", stream_prefix=prefix, read_batch=500)
    line("RedisStreamBus publish -> consume -> ack", n, await bus_roundtrip(bus, n), ("raw XADD", base))
    await bus.close()
    keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
    await raw.delete(*keys)
    await raw.aclose()


async def bench_ws_fanout(clients: int = 50, n: int = 2_000) -> None:
    hub = WsHub(resume_grace_s=0.0, client_queue=4096)
    direct: list[web.WebSocketResponse] = []
    mode = {"hub": True}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if mode["hub"]:
            await hub.serve(ws, user={"id": 1}, accepts=lambda topic, data: True)
        else:
            direct.append(ws)
            async for _ in ws:
                pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:

        async def run(publish: Any) -> float:
            sockets = [await session.ws_connect(f"http://127.0.0.1:{port}/ws") for _ in range(clients)]
            while len(direct) < clients and not mode["hub"]:
                await asyncio.sleep(0.01)

            async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
                seen = 0
                while seen < n:
                    msg = json.loads((await ws.receive()).data)
                    seen += msg["type"] == "event"

            await asyncio.sleep(0.1)
            readers = [asyncio.create_task(drain(ws)) for ws in sockets]
            started = time.perf_counter()
            for i in range(n):
                await publish(i)
                if i % 100 == 99:
                    await asyncio.sleep(0)  # let the sockets move
            await asyncio.gather(*readers)
            elapsed = time.perf_counter() - started
            for ws in sockets:
                await ws.close()
            return elapsed

        mode["hub"] = False

        async def send_direct(i: int) -> None:
            text = json.dumps({"type": "event", "seq": i + 1, "data": {"topic": "media.camera_status", "data": DATA}})
            for ws in direct:
                await ws.send_str(text)

        base = line(f"aiohttp send_str to {clients} clients (baseline)", n * clients, await run(send_direct))
        mode["hub"] = True

        async def send_hub(i: int) -> None:
            hub.publish(Topic.CAMERA_STATUS, DATA)

        rate = line(
            f"WsHub fan-out to {clients} clients (deliveries)", n * clients, await run(send_hub), ("send_str", base)
        )
        print(f"{'  = events/s with every client served':<48} {rate / clients:>12,.0f} /s")
    await hub.close()
    await runner.cleanup()


async def main() -> None:
    await bench_inprocess()
    await bench_redis()
    await bench_ws_fanout()


if __name__ == "__main__":
    asyncio.run(main())
