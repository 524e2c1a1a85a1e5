"""The workflow's branches over HTTP on a real hub (SQLite, and PostgreSQL as a second process
would use it): intake, file, auto-dispatch to a named person, return and re-dispatch, extension,
suspension, return visit, refused transitions with the current state, two people acting at once,
the printable export, the editable catalog and calendar; deadline alerts pushed over the websocket."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from tests.console.hubrunner import RunningHub, hub_config, running_hub
from tests.dispatch.conftest import PG_SERVER, _admin_sql

USERS = ("admin", "commander", "duty", "field1", "outsider")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def hub(request: pytest.FixtureRequest, tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    overrides: dict[str, Any] = {
        "analytics": {"local_workers": 0},
        "dispatch": {"supervisor_poll_s": 0.1, "reminder_interval_s": 1.0, "warn_share": 0.5},
    }
    name = None
    if request.param == "postgres":
        name = f"fh_api_{uuid.uuid4().hex[:12]}"
        await _admin_sql(f'CREATE DATABASE "{name}"')
        overrides["database_url"] = PG_SERVER + name
    try:
        async with running_hub(hub_config(tmp_path / "var", model_data_dir, **overrides)) as running:
            for user in USERS:
                await running.login(user)
            yield running
    finally:
        if name is not None:
            await _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _photo() -> str:
    ok, jpeg = cv2.imencode(".jpg", np.full((24, 32, 3), 60, np.uint8))
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


async def _ok(hub: RunningHub, method: str, path: str, user: str, body: Any = None, status: int = 200) -> Any:
    got, reply = await hub.call(method, path, user, json=body if body is not None else {})
    assert got == status, (method, path, got, reply)
    return reply


async def _new_case(hub: RunningHub, category: str = "exposed_garbage") -> dict[str, Any]:
    return dict(
        await _ok(
            hub, "POST", "/api/v1/cases", "duty",
            {"source": "hotline", "category": category, "location": "No. 5 Jiefang Road",
             "description": "bags on the pavement", "contact": "Ms Chen", "photo": _photo()},
            status=201,
        )
    )


async def test_every_branch_over_http(hub: RunningHub) -> None:
    field_id = hub.users["field1"]["id"]
    patrol = hub.teams["patrol"]["id"]
    # intake: who may, and bad input changes nothing
    status, body = await hub.call("POST", "/api/v1/cases", "field1", json={"source": "hotline", "category": "dirty_road", "location": "x"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await hub.call("POST", "/api/v1/cases", "duty", json={"source": "fax", "category": "dirty_road", "location": "x"})
    assert status == 422 and body["error"]["code"] == "invalid_input"
    status, body = await hub.call("POST", "/api/v1/cases", "duty", json={"source": "manual", "category": "nope", "location": "x"})
    assert status == 422 and "category" in body["error"]["message"]
    assert await _ok(hub, "GET", "/api/v1/cases", "duty") == []
    case = await _new_case(hub)
    cid = case["id"]
    assert case["status"] == "reported" and [a["kind"] for a in case["attachments"]] == ["photo"]
    # a refused transition: 409 naming where the case is and what it allows
    status, body = await hub.call("POST", f"/api/v1/cases/{cid}/evaluate", "duty", json={"score": 5})
    assert status == 409 and body["error"]["code"] == "transition_refused"
    assert body["error"]["current"] == "reported" and body["error"]["allowed"] == ["file", "refuse"]
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/file", "duty", {"note": "confirmed"})
    # auto-dispatch: the admin's rule sends manhole covers... and garbage to the named person
    status, _ = await hub.call("PUT", "/api/v1/dispatch-rules", "commander", json=[])
    assert status == 403
    status, body = await hub.call("PUT", "/api/v1/dispatch-rules", "admin", json=[{"region": "city", "team_id": 999}])
    assert status == 422 and "team_id" in body["error"]["message"]
    rules = await _ok(
        hub, "PUT", "/api/v1/dispatch-rules", "admin",
        [{"region": "city", "category": "exposed_garbage", "team_id": patrol, "user_id": field_id}],
    )
    assert rules[0]["user_name"] == "Field Zhao"
    assert await _ok(hub, "GET", "/api/v1/dispatch-rules", "commander") == rules
    dispatched = await _ok(hub, "POST", f"/api/v1/cases/{cid}/dispatch", "commander", {})
    assert dispatched["status"] == "dispatched" and dispatched["tasks"][0]["assignee_id"] == field_id
    # the team returns it as not its remit; the centre re-dispatches by hand
    status, body = await hub.call("POST", f"/api/v1/cases/{cid}/return", "field1", json={"reason": ""})
    assert status == 422
    returned = await _ok(hub, "POST", f"/api/v1/cases/{cid}/return", "field1", {"reason": "not our street"})
    assert returned["status"] == "returned"
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/dispatch", "commander", {"team_id": patrol})
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/acknowledge", "field1")
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/progress", "field1", {"note": "truck ordered"})
    asked = await _ok(hub, "POST", f"/api/v1/cases/{cid}/extension", "field1", {"amount": 2, "reason": "truck late"})
    assert asked["extensions"][0]["status"] == "pending"
    status, body = await hub.call("POST", f"/api/v1/cases/{cid}/extension/approve", "field1", json={})
    assert status == 403
    approved = await _ok(hub, "POST", f"/api/v1/cases/{cid}/extension/approve", "commander", {"note": "ok"})
    assert approved["deadline_at"] > asked["deadline_at"]
    status, body = await hub.call("POST", f"/api/v1/cases/{cid}/extension/refuse", "commander", json={"reason": "x"})
    assert status == 409 and "no pending extension" in body["error"]["message"]
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/suspend", "commander", {"reason": "waiting for the owner"})
    resumed = await _ok(hub, "POST", f"/api/v1/cases/{cid}/resume", "commander", {})
    assert resumed["status"] == "handling"
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/report", "field1", {"note": "cleared", "photo": _photo()})
    await _ok(hub, "POST", f"/api/v1/cases/{cid}/verify", "duty", {})
    status, body = await hub.call("POST", f"/api/v1/cases/{cid}/evaluate", "duty", json={"score": 9})
    assert status == 422
    done = await _ok(hub, "POST", f"/api/v1/cases/{cid}/evaluate", "duty", {"score": 4, "note": "caller happy"})
    assert done["status"] == "evaluated" and done["satisfaction"] == 4
    assert [e["action"] for e in done["timeline"]] == [
        "intake", "file", "dispatch", "return", "dispatch", "acknowledge", "progress", "request_extension",
        "approve_extension", "suspend", "resume", "report", "verify", "evaluate",
    ]
    # the printable export: self-contained, evidence embedded, the chain checked
    status, page = await hub.call("GET", f"/api/v1/cases/{cid}/export.html", "commander")
    assert status == 200
    text = page.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>") and "完整 intact" in text and "BROKEN" not in text
    assert len(re.findall(r'src="data:image/jpeg;base64,', text)) == 2
    assert all(e["hash"] in text for e in done["timeline"])
    assert "<script" not in text and "http://" not in text
    status, _ = await hub.call("GET", f"/api/v1/cases/{cid}/export.html", "outsider")
    assert status == 404
    # another refused one: a second refusal to file of a refused case
    other = await _new_case(hub)
    await _ok(hub, "POST", f"/api/v1/cases/{other['id']}/refuse", "duty", {"reason": "duplicate"})
    status, body = await hub.call("POST", f"/api/v1/cases/{other['id']}/file", "duty", json={})
    assert status == 409 and body["error"]["current"] == "refused" and body["error"]["allowed"] == []


async def test_two_people_acting_at_once_over_http(hub: RunningHub) -> None:
    """One request succeeds; the other gets 409 with the state the case is in now; nothing is half
    written (the timeline holds exactly the winner's entry, the chain is intact)."""
    patrol = hub.teams["patrol"]["id"]
    for first, second in (
        (("POST", "file", "duty", {}), ("POST", "refuse", "commander", {"reason": "not ours"})),
        (("POST", "verify", "duty", {}), ("POST", "reject", "duty", {"note": "still dirty"})),
    ):
        case = await _new_case(hub)
        cid = case["id"]
        if first[1] == "verify":
            await _ok(hub, "POST", f"/api/v1/cases/{cid}/file", "duty")
            await _ok(hub, "POST", f"/api/v1/cases/{cid}/dispatch", "commander", {"team_id": patrol})
            await _ok(hub, "POST", f"/api/v1/cases/{cid}/acknowledge", "field1")
            await _ok(hub, "POST", f"/api/v1/cases/{cid}/report", "field1", {"note": "done"})
        replies = await asyncio.gather(
            *(hub.call(m, f"/api/v1/cases/{cid}/{action}", user, json=body) for m, action, user, body in (first, second))
        )
        codes = sorted(code for code, _ in replies)
        assert codes == [200, 409], replies
        winner = next(body for code, body in replies if code == 200)
        loser = next(body for code, body in replies if code == 409)
        assert loser["error"]["code"] in ("transition_refused", "conflict")
        assert loser["error"]["current"] == winner["status"]
        now = await _ok(hub, "GET", f"/api/v1/cases/{cid}", "duty")
        assert now["status"] == winner["status"]
        assert len(now["timeline"]) == len(winner["timeline"])
        export = (await hub.call("GET", f"/api/v1/cases/{cid}/export.html", "duty"))[1].decode()
        assert "完整 intact" in export


async def test_catalog_and_calendar_are_editable(hub: RunningHub) -> None:
    cats = await _ok(hub, "GET", "/api/v1/categories", "field1")
    parking = next(c for c in cats if c["code"] == "roadside_parking")
    assert parking["kind"] == "event" and parking["handle_limit"] == {"type": "urgent_hours", "amount": 2.0}
    raw = await _ok(hub, "GET", "/api/v1/categories/catalog", "admin")
    assert {"majors", "categories", "rules"} <= set(raw)
    status, _ = await hub.call("PUT", "/api/v1/categories", "duty", json=raw)
    assert status == 403
    broken = {**raw, "rules": {"occupied_road": "no_such_category"}}
    status, body = await hub.call("PUT", "/api/v1/categories", "admin", json=broken)
    assert status == 422 and "unknown category" in body["error"]["message"]
    raw["categories"][0]["handle_limit"] = {"type": "working_days", "amount": 1}
    await _ok(hub, "PUT", "/api/v1/categories", "admin", raw)
    cats = await _ok(hub, "GET", "/api/v1/categories", "duty")
    assert cats[0]["handle_limit"] == {"type": "working_days", "amount": 1.0}
    # the centre's own calendar
    status, _ = await hub.call("PUT", "/api/v1/calendar/overrides/2025-09-16", "duty", json={"kind": "holiday"})
    assert status == 403
    status, body = await hub.call("PUT", "/api/v1/calendar/overrides/2025-13-40", "admin", json={"kind": "holiday"})
    assert status == 422
    await _ok(hub, "PUT", "/api/v1/calendar/overrides/2025-09-16", "admin", {"kind": "holiday", "note": "city festival"})
    days = await _ok(hub, "GET", "/api/v1/calendar?from=2025-09-15&to=2025-09-17", "duty")
    assert [(d["date"], d["workday"], d["override"]) for d in days] == [
        ("2025-09-15", True, None), ("2025-09-16", False, "holiday"), ("2025-09-17", True, None),
    ]
    # Monday 2025-09-15 17:00 Beijing + 1 working hour: the 16th is a local holiday -> 17th 09:00
    preview = await _ok(hub, "GET", "/api/v1/calendar/deadline?start=1757926800&type=working_hours&amount=1", "duty")
    assert preview["due_at"] == 1758070800.0
    assert [o["date"] for o in await _ok(hub, "GET", "/api/v1/calendar/overrides", "commander")] == ["2025-09-16"]
    status, _ = await hub.call("DELETE", "/api/v1/calendar/overrides/2025-09-16", "admin")
    assert status == 204
    status, _ = await hub.call("DELETE", "/api/v1/calendar/overrides/2025-09-16", "admin")
    assert status == 404


async def _events(ws: aiohttp.ClientWebSocketResponse, topic: str, count: int, timeout: float) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < count:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        try:
            msg = await ws.receive_json(timeout=left)
        except TimeoutError:
            break
        if msg["type"] == "event" and msg["data"]["topic"] == topic:
            got.append(msg["data"]["data"])
    return got


async def test_deadline_alerts_reach_the_team_and_the_commander(hub: RunningHub) -> None:
    """A category with a 7.2-second limit: the warning (at 50 %), the overdue alert and reminders
    arrive over /ws at the field page's user and the commander's console; an outsider sees none."""
    raw = await _ok(hub, "GET", "/api/v1/categories/catalog", "admin")
    for cat in raw["categories"]:
        if cat["code"] == "exposed_garbage":
            cat["handle_limit"] = {"type": "urgent_hours", "amount": 0.002}
    await _ok(hub, "PUT", "/api/v1/categories", "admin", raw)
    sockets = {}
    for user in ("field1", "commander", "outsider"):
        ws = await hub.http.ws_connect(
            hub.url.replace("http://", "ws://") + "/ws", protocols=("fusionhub.v1", f"bearer.{hub.tokens[user]}")
        )
        hello = await ws.receive_json(timeout=5)
        await ws.send_json({"type": "resume", "seq": 0, "data": {"last_seq": hello["data"]["last_seq"]}})
        sockets[user] = ws
    try:
        case = await _new_case(hub)
        await _ok(hub, "POST", f"/api/v1/cases/{case['id']}/file", "duty")
        await _ok(hub, "POST", f"/api/v1/cases/{case['id']}/dispatch", "commander", {"team_id": hub.teams["patrol"]["id"]})
        field_alerts = await _events(sockets["field1"], "dispatch.case_alert", 3, timeout=20)
        assert [a["kind"] for a in field_alerts] == ["warning", "overdue", "reminder"], field_alerts
        assert all(a["case_id"] == case["id"] and a["team_id"] == hub.teams["patrol"]["id"] for a in field_alerts)
        assert [a["reminder"] for a in field_alerts[1:]] == [1, 2]
        commander_alerts = await _events(sockets["commander"], "dispatch.case_alert", 3, timeout=10)
        assert [a["kind"] for a in commander_alerts] == ["warning", "overdue", "reminder"]
        assert await _events(sockets["outsider"], "dispatch.case_alert", 1, timeout=0.5) == []
        # the team answers; after that many unanswered reminders the case is marked for penalty
        got = await _ok(hub, "GET", f"/api/v1/cases/{case['id']}", "commander")
        assert got["clock"]["state"] in ("overdue", "penalized")
    finally:
        for ws in sockets.values():
            await ws.close()
