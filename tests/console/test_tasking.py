"""One-click tasking and statistics over HTTP and /ws on a real hub: who may send, see and answer,
bad input, live events per user, the hub's own escalator, and region-scoped statistics."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from sqlalchemy import update

from fusionhub.console.keys import DISPATCH, ESCALATOR
from fusionhub.dispatch.models import InstructionRecipient, to_datetime
from tests.console.hubrunner import RunningHub, hub_config, open_ws, running_hub

FIELD2_PASSWORD = "field2-pass-1"


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        for name in ("commander", "duty", "field1", "outsider"):
            await running.login(name)
        team2 = await running.app[DISPATCH].create_team("Patrol team 2", "city")
        running.teams["team2"] = team2
        running.users["field2"] = await running.app[DISPATCH].create_user(
            "field2", FIELD2_PASSWORD, "field", "city", "Field Qian", team_id=team2["id"]
        )
        status, body = await running.call(
            "POST", "/api/v1/auth/login", json={"username": "field2", "password": FIELD2_PASSWORD}
        )
        assert status == 200
        running.tokens["field2"] = body["token"]
        yield running


async def _topics(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[tuple[str, dict[str, Any]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    try:
        while True:
            msg = await ws.receive_json(timeout=seconds)
            if msg["type"] == "event":
                got.append((msg["data"]["topic"], msg["data"]["data"]))
    except TimeoutError:
        return got


def _jpeg_data_url() -> str:
    ok, jpeg = cv2.imencode(".jpg", np.full((16, 16, 3), 80, np.uint8))
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


async def test_tasking_needs_a_login_and_the_right_role(hub: RunningHub) -> None:
    for method, path in [
        ("GET", "/api/v1/instructions"),
        ("POST", "/api/v1/instructions"),
        ("GET", "/api/v1/tasking/directory"),
        ("GET", "/api/v1/stats"),
        ("GET", "/api/v1/stats/top"),
    ]:
        status, body = await hub.call(method, path)
        assert status == 401 and body["error"]["code"] == "unauthenticated", path
    body = {"kind": "patrol", "text": "go", "deadline_at": time.time() + 600, "team_ids": [hub.teams["patrol"]["id"]]}
    for who in ("duty", "field1"):
        status, reply = await hub.call("POST", "/api/v1/instructions", who, json=body)
        assert status == 403 and reply["error"]["code"] == "forbidden"
    status, _ = await hub.call("GET", "/api/v1/tasking/directory", "field1")
    assert status == 403
    for bad, field in [
        ({**body, "colour": "red"}, "colour"),
        ({**body, "team_ids": []}, "recipients"),
        ({**body, "team_ids": [hub.teams["other"]["id"]]}, "team_ids"),
        ({**body, "deadline_at": "soon"}, "deadline_at"),
        ({**body, "ack_within_min": 0}, "ack_within_min"),
    ]:
        status, reply = await hub.call("POST", "/api/v1/instructions", "commander", json=bad)
        assert status == 422 and field in reply["error"]["message"], (bad, reply)
    status, listed = await hub.call("GET", "/api/v1/instructions", "commander")
    assert status == 200 and listed == []


async def test_instruction_to_two_teams_live_over_http_and_websocket(hub: RunningHub) -> None:
    patrol, team2 = hub.teams["patrol"]["id"], hub.teams["team2"]["id"]
    status, directory = await hub.call("GET", "/api/v1/tasking/directory", "commander")
    assert status == 200
    assert {t["name"] for t in directory["teams"]} == {"Patrol team 1", "Patrol team 2"}
    assert {p["username"] for p in directory["people"]} == {"field1", "field2"}
    sockets = {name: await open_ws(hub, name) for name in ("commander", "field1", "field2", "outsider", "duty")}
    try:
        status, sent = await hub.call(
            "POST", "/api/v1/instructions", "commander",
            json={"kind": "emergency", "text": "Flooding at the underpass: close it", "deadline_at": time.time() + 3600,
                  "team_ids": [patrol, team2], "ack_within_min": 3},
        )
        assert status == 201 and sent["counts"]["pending"] == 2 and sent["ack_within_s"] == 180
        iid = sent["id"]
        status, _ = await hub.call("GET", f"/api/v1/instructions/{iid}", "outsider")
        assert status == 404
        status, acked = await hub.call("POST", f"/api/v1/instructions/{iid}/acknowledge", "field1", json={})
        assert status == 200 and acked["counts"]["acknowledged"] == 1
        status, again = await hub.call("POST", f"/api/v1/instructions/{iid}/acknowledge", "field1", json={})
        assert status == 409 and again["error"]["code"] == "conflict"
        status, bad = await hub.call(
            "POST", f"/api/v1/instructions/{iid}/report", "field2", json={"note": "x", "photo": "data:text/plain,hi"}
        )
        assert status == 422
        status, reported = await hub.call(
            "POST", f"/api/v1/instructions/{iid}/report", "field2",
            json={"note": "underpass closed", "photo": _jpeg_data_url()},
        )
        assert status == 200 and reported["counts"]["reported"] == 1
        row = next(r for r in reported["recipients"] if r["team_id"] == team2)
        async with hub.http.get(hub.url + row["photo_url"], headers=hub.auth("commander")) as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
            assert (await resp.read())[:3] == b"\xff\xd8\xff"

        got = {name: await _topics(ws, 0.5) for name, ws in sockets.items()}
        for name in ("commander", "duty", "field1", "field2"):
            states = [d["counts"] for t, d in got[name] if t == "dispatch.instruction_changed"]
            assert [c["acknowledged"] + c["reported"] for c in states] == [0, 1, 2], name
        assert got["outsider"] == []
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_the_hubs_escalator_tells_the_commanders_over_the_recipient(hub: RunningHub) -> None:
    dispatch = hub.app[DISPATCH]
    sockets = {name: await open_ws(hub, name) for name in ("commander", "duty", "field2", "outsider")}
    try:
        status, sent = await hub.call(
            "POST", "/api/v1/instructions", "commander",
            json={"kind": "patrol", "text": "Check the night market", "deadline_at": time.time() + 3600,
                  "team_ids": [hub.teams["team2"]["id"]], "user_ids": [hub.users["field1"]["id"]],
                  "ack_within_min": 1},
        )
        assert status == 201
        await hub.call("POST", f"/api/v1/instructions/{sent['id']}/acknowledge", "field1", json={})
        # a minute passes without team 2 answering (moved on in the database, not waited for)
        async with dispatch.engine.begin() as conn:
            await conn.execute(
                update(InstructionRecipient)
                .where(InstructionRecipient.instruction_id == sent["id"])
                .values(ack_due_at=to_datetime(time.time()) - timedelta(seconds=1))
            )
        hub.app[ESCALATOR].poke()
        got = {name: await _topics(ws, 1.5) for name, ws in sockets.items()}
    finally:
        for ws in sockets.values():
            await ws.close()
    for name in ("commander", "duty"):
        escalations = [d for t, d in got[name] if t == "dispatch.instruction_escalated"]
        assert [e["recipient"]["team_name"] for e in escalations] == ["Patrol team 2"], name
    assert not [t for t, _ in got["field2"] if t == "dispatch.instruction_escalated"]
    assert got["outsider"] == []
    status, now = await hub.call("GET", f"/api/v1/instructions/{sent['id']}", "commander")
    assert [r["status"] for r in now["recipients"]] == ["escalated", "acknowledged"]


async def test_statistics_over_http_are_scoped_to_the_region(hub: RunningHub) -> None:
    dispatch = hub.app[DISPATCH]
    case = await dispatch.create_case(hub.users["duty"], source="hotline", category="manhole_cover", location="Gate 1")
    await dispatch.file_case(hub.users["duty"], case["id"])
    status, stats = await hub.call("GET", "/api/v1/stats?group_by=source", "commander")
    assert status == 200 and stats["totals"]["filed"] == 1 and stats["groups"][0]["key"] == "hotline"
    assert len(stats["daily"]) == 30 and stats["by_status"] == {"filed": 1}
    status, other = await hub.call("GET", "/api/v1/stats", "outsider")
    assert status == 200 and other["totals"]["filed"] == 0
    status, _ = await hub.call("GET", "/api/v1/stats", "field1")
    assert status == 403
    for query in ("from=2025-13-01", "from=2025-03-02&to=2025-03-01", "group_by=weather", "limit=x"):
        path = "/api/v1/stats/top" if query.startswith("limit") else "/api/v1/stats"
        status, err = await hub.call("GET", f"{path}?{query}", "commander")
        assert status == 422 and err["error"]["code"] == "invalid_input", query
    status, top = await hub.call("GET", "/api/v1/stats/top", "commander")
    assert status == 200 and top["problems"] == []
