"""A real hub (the whole aiohttp app with media, analytics, dispatch) on 127.0.0.1 for tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
from aiohttp import web

from fusionhub.console.app import build_app
from fusionhub.console.config import HubConfig
from fusionhub.console.keys import BUS, CONFIG, DISPATCH
from fusionhub.signaling.messages import Box, FlagRaised, Topic, payload

PASSWORDS = {
    "admin": "admin-pass-1",
    "commander": "commander-pass-1",
    "duty": "duty-pass-1",
    "field1": "field1-pass-1",
    "outsider": "outsider-pass-1",
}


def hub_config(data_dir: Path, model_data_dir: Path, **overrides: Any) -> HubConfig:
    """A hub on loopback only: free port, ICE host candidates pinned to 127.0.0.1, no ICE servers."""
    raw: dict[str, Any] = {
        "data_dir": data_dir,
        "http": {"host": "127.0.0.1", "port": 0},
        "media": {"ice_servers": [], "ice_host_addresses": ["127.0.0.1"]},
        "analytics": {"model_dir": str(model_data_dir / "models"), "local_workers": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return HubConfig.model_validate(raw)


@dataclass
class RunningHub:
    """A started hub and an HTTP client for it."""

    url: str
    app: web.Application
    http: aiohttp.ClientSession
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    async def login(self, username: str) -> str:
        async with self.http.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": username, "password": PASSWORDS[username]},
        ) as resp:
            assert resp.status == 200, await resp.text()
            token: str = (await resp.json())["token"]
        self.tokens[username] = token
        return token

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def call(self, method: str, path: str, username: str | None = None, **kw: Any) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if username is not None:
            headers.update(self.auth(username))
        async with self.http.request(method, f"{self.url}{path}", headers=headers, **kw) as resp:
            body: Any
            if resp.content_type == "application/json":
                body = await resp.json()
            else:
                body = await resp.read()
            return resp.status, body


async def seed(app: web.Application) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """One user per role in region `city`, a patrol team, and an outsider in another region."""
    service = app[DISPATCH]
    teams = {
        "patrol": await service.create_team("Patrol team 1", "city"),
        "other": await service.create_team("Patrol team 9", "elsewhere"),
    }
    users = {
        "admin": await service.create_user("admin", PASSWORDS["admin"], "admin", "city", "Admin"),
        "commander": await service.create_user("commander", PASSWORDS["commander"], "commander", "city", "Commander Li"),
        "duty": await service.create_user("duty", PASSWORDS["duty"], "duty", "city", "Duty Wang"),
        "field1": await service.create_user(
            "field1", PASSWORDS["field1"], "field", "city", "Field Zhao", team_id=teams["patrol"]["id"]
        ),
        "outsider": await service.create_user("outsider", PASSWORDS["outsider"], "duty", "elsewhere", "Outsider"),
    }
    return users, teams


@asynccontextmanager
async def running_hub(config: HubConfig, *, seeded: bool = True) -> AsyncIterator[RunningHub]:
    """Start the hub app on a free loopback port; stop it (and everything it started) after."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            hub = RunningHub(url=f"http://127.0.0.1:{port}", app=app, http=http)
            if seeded:
                hub.users, hub.teams = await seed(app)
            yield hub
    finally:
        await runner.cleanup()


async def raise_flag(hub: RunningHub, camera_id: int, zone_id: int) -> str:
    """Publish a flag on the bus as the analytics hub does, with a real evidence JPEG on disk."""
    flag_id = str(uuid.uuid4())
    rel = f"evidence/{flag_id}.jpg"
    path = hub.app[CONFIG].data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, jpeg = cv2.imencode(".jpg", np.full((360, 640, 3), 90, np.uint8))
    assert ok
    path.write_bytes(jpeg.tobytes())
    now = time.time()
    msg = FlagRaised(
        flag_id=flag_id,
        camera_id=camera_id,
        zone_id=zone_id,
        zone_name="lane",
        rule="occupied_road",
        label="car",
        confidence=0.9,
        boxes=[Box(x1=10, y1=200, x2=200, y2=340, label="car", confidence=0.9, track_id=1)],
        frame_width=640,
        frame_height=360,
        evidence_path=rel,
        first_seen_at=now - 6,
        raised_at=now,
    )
    await hub.app[BUS].publish(Topic.FLAG_RAISED, payload(msg))
    for _ in range(100):
        status, flag = await hub.call("GET", f"/api/v1/flags/{flag_id}", "duty")
        if status == 200:
            return flag_id
        await asyncio.sleep(0.05)
    raise AssertionError("the flag never reached the review queue")


async def open_ws(hub: RunningHub, user: str) -> aiohttp.ClientWebSocketResponse:
    """A console's websocket for `user`, resumed so that live events flow."""
    ws = await hub.http.ws_connect(
        hub.url.replace("http://", "ws://") + "/ws", protocols=("fusionhub.v1", f"bearer.{hub.tokens[user]}")
    )
    hello = await ws.receive_json(timeout=5)
    await ws.send_json({"type": "resume", "seq": 0, "data": {"last_seq": hello["data"]["last_seq"]}})
    return ws
