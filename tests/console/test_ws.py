"""/ws as browsers use it: login at the handshake, Origin checked, events filtered by role and region."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.console.hubrunner import RunningHub, hub_config, raise_flag, running_hub


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        for name in ("admin", "duty", "field1", "outsider"):
            await running.login(name)
        yield running


def _ws_url(hub: RunningHub) -> str:
    return hub.url.replace("http://", "ws://") + "/ws"


async def _open(hub: RunningHub, user: str, **kw: Any) -> aiohttp.ClientWebSocketResponse:
    ws = await hub.http.ws_connect(
        _ws_url(hub), protocols=("fusionhub.v1", f"bearer.{hub.tokens[user]}"), **kw
    )
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["data"]["user"]["username"] == user
    await ws.send_json({"type": "resume", "seq": 0, "data": {"last_seq": hello["data"]["last_seq"]}})
    return ws


async def _events(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    try:
        while True:
            msg = await ws.receive_json(timeout=seconds)
            if msg["type"] == "event":
                got.append(msg["data"])
    except TimeoutError:
        return got


async def test_handshake_needs_a_valid_login(hub: RunningHub) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as no_token:
        await hub.http.ws_connect(_ws_url(hub), protocols=("fusionhub.v1",))
    assert no_token.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as forged:
        await hub.http.ws_connect(_ws_url(hub), protocols=("fusionhub.v1", "bearer.forged.token"))
    assert forged.value.status == 401


async def test_foreign_origin_is_refused(hub: RunningHub) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await hub.http.ws_connect(
            _ws_url(hub),
            protocols=("fusionhub.v1", f"bearer.{hub.tokens['duty']}"),
            headers={"Origin": "http://evil.example"},
        )
    assert refused.value.status == 403
    ws = await _open(hub, "duty", headers={"Origin": hub.url})
    assert ws.protocol == "fusionhub.v1"
    await ws.close()


async def test_events_reach_only_who_may_see_them(hub: RunningHub) -> None:
    status, cam = await hub.call(
        "POST", "/api/v1/cameras", "admin", json={"name": "Gate", "url": "rtsp://127.0.0.1:9/x", "region": "city"}
    )
    assert status == 201
    status, zone = await hub.call(
        "POST", f"/api/v1/cameras/{cam['id']}/zones", "admin",
        json={"name": "lane", "kind": "road", "polygon": [[0, 0.5], [1, 0.5], [1, 1]]},
    )
    duty = await _open(hub, "duty")
    field = await _open(hub, "field1")
    outsider = await _open(hub, "outsider")
    flag_id = await raise_flag(hub, cam["id"], zone["id"])

    duty_events = await _events(duty, 1.5)
    assert any(e["topic"] == "dispatch.flag_created" and e["data"]["id"] == flag_id for e in duty_events)
    assert not [e for e in await _events(field, 0.5) if e["topic"].startswith("dispatch.flag")]
    assert not [e for e in await _events(outsider, 0.5) if e["topic"].startswith("dispatch.flag")]

    # a case dispatched to the field member's team reaches them live
    status, body = await hub.call("POST", f"/api/v1/flags/{flag_id}/confirm", "duty", json={})
    assert status == 201
    await hub.login("commander")
    status, _ = await hub.call(
        "POST", f"/api/v1/cases/{body['case']['id']}/dispatch", "commander",
        json={"team_id": hub.teams["patrol"]["id"]},
    )
    assert status == 200
    field_events = await _events(field, 1.5)
    assert any(e["topic"] == "dispatch.task_changed" for e in field_events)
    assert not [e for e in await _events(outsider, 0.3) if e["topic"].startswith("dispatch.")]
    for ws in (duty, field, outsider):
        await ws.close()


async def test_a_client_that_leaves_at_once_is_let_go(hub: RunningHub) -> None:
    """Closing right after the resume (a page reload) must end the server side too, not leak it."""
    from fusionhub.console.keys import WSHUB

    for _ in range(3):
        ws = await _open(hub, "duty")
        await ws.close()
    await asyncio.sleep(0.2)
    # the hub's close waits for every connection handler to end: with a leaked one it never returns
    async with asyncio.timeout(3):
        await hub.app[WSHUB].close()
    assert hub.app[WSHUB].client_count == 0
