"""A hub whose database connections are all in use answers 503 with Retry-After, not 500."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import text

from fusionhub.console.errors import error_middleware
from fusionhub.dispatch.db import create_engine


async def test_no_free_database_connection_is_a_busy_reply(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", pool_size=1, max_overflow=0, pool_timeout=0.3)

    async def cases(_request: web.Request) -> web.Response:
        async with engine.connect() as conn:
            return web.json_response({"n": (await conn.execute(text("SELECT 1"))).scalar_one()})

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/api/v1/cases", cases)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/cases"
    try:
        async with aiohttp.ClientSession() as http:
            async with engine.connect() as held:  # every connection of the pool in use elsewhere
                await held.execute(text("SELECT 1"))
                async with http.get(url) as resp:
                    assert resp.status == 503
                    assert resp.headers["Retry-After"] == "2"
                    body = await resp.json()
                    assert body["error"]["code"] == "busy"
                    assert "database connections are all in use" in body["error"]["message"]
            async with http.get(url) as resp:  # one came free: served as usual
                assert resp.status == 200 and (await resp.json()) == {"n": 1}
    finally:
        await runner.cleanup()
        await engine.dispose()
