"""Video calls from cases over the REST API: who may call whom, ringing, declining, busy, the
case timeline; the media itself is covered by tests/e2e/test_call_browser.py."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fusionhub.console.keys import BUS, CALLS, CONFIG
from fusionhub.signaling.messages import CallRecorded, Topic, payload
from tests.console.hubrunner import RunningHub, hub_config, running_hub


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        for name in ("duty", "commander", "field1", "outsider"):
            await running.login(name)
        yield running


async def _case(hub: RunningHub) -> int:
    status, case = await hub.call(
        "POST", "/api/v1/cases", "duty", json={"source": "hotline", "category": "exposed_garbage", "location": "Jiefang Road"}
    )
    assert status == 201, case
    return int(case["id"])


async def _actions(hub: RunningHub, case_id: int, want: str, count: int = 1) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        while True:
            _, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
            found = [e for e in case["timeline"] if e["action"] == want]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)


async def test_placing_a_call_checks_who_and_what(hub: RunningHub) -> None:
    case_id = await _case(hub)
    field_id = hub.users["field1"]["id"]
    bad = [
        ("field1", {"user_id": field_id}, 403),  # field members do not place calls
        ("commander", {}, 422),  # neither user nor team
        ("commander", {"user_id": field_id, "team_id": hub.teams["patrol"]["id"]}, 422),  # both
        ("commander", {"user_id": hub.users["duty"]["id"]}, 422),  # not a field member
        ("commander", {"team_id": hub.teams["other"]["id"]}, 422),  # a team outside the region
        ("outsider", {"user_id": field_id}, 404),  # the case is outside the caller's region
    ]
    for user, body, status in bad:
        got, reply = await hub.call("POST", f"/api/v1/cases/{case_id}/calls", user, json=body)
        assert got == status, (user, body, reply)
    got, reply = await hub.call("POST", "/api/v1/cases/999999/calls", "commander", json={"user_id": field_id})
    assert got == 404
    assert len(hub.app[CALLS]) == 0  # nothing was placed


async def test_ring_decline_and_answer_hang_up_reach_the_timeline(hub: RunningHub) -> None:
    case_id = await _case(hub)
    field_id = hub.users["field1"]["id"]
    status, call = await hub.call("POST", f"/api/v1/cases/{case_id}/calls", "commander", json={"team_id": hub.teams["patrol"]["id"]})
    assert status == 201 and call["state"] == "ringing" and call["ring_user_ids"] == [field_id], call
    # the callee sees it ringing; an outsider cannot see or act on it
    _, mine = await hub.call("GET", "/api/v1/calls", "field1")
    assert [c["call_id"] for c in mine] == [call["call_id"]]
    for path in ("", "/answer", "/snapshot"):
        got, _ = await hub.call("POST" if path else "GET", f"/api/v1/calls/{call['call_id']}{path}", "outsider")
        assert got == 404, path
    # a second call while the commander is in one: busy
    got, reply = await hub.call("POST", f"/api/v1/cases/{case_id}/calls", "commander", json={"user_id": field_id})
    assert got == 409 and reply["error"]["code"] == "busy"
    # the callee cannot view before answering; the caller cannot snapshot a ringing call
    got, _ = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/snapshot", "commander")
    assert got == 409
    status, declined = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/decline", "field1")
    assert status == 200
    ended = await _actions(hub, case_id, "call_ended")
    assert ended[0]["data"]["end_reason"] == "declined" and ended[0]["data"]["answered"] is False
    got, _ = await hub.call("GET", f"/api/v1/calls/{call['call_id']}", "commander")
    assert got == 404  # over

    status, call = await hub.call("POST", f"/api/v1/cases/{case_id}/calls", "commander", json={"user_id": field_id})
    assert status == 201
    status, active = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/answer", "field1")
    assert status == 200 and active["state"] == "active" and active["started_at"] is not None
    got, _ = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/answer", "field1")
    assert got == 409  # answered already
    # no video from the field yet: the snapshot says so and stores nothing
    got, reply = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/snapshot", "commander")
    assert got == 409 and reply["error"]["code"] == "no_picture"
    # SDP to the call endpoints is checked like WHIP/WHEP
    got, reply = await hub.call(
        "POST", f"/api/v1/calls/{call['call_id']}/publish", "field1", data="hello", headers={"Content-Type": "application/sdp"}
    )
    assert got == 400 and reply["error"]["code"] == "invalid_sdp"
    started = await _actions(hub, case_id, "call_started")
    assert {p["user_id"] for p in started[0]["data"]["participants"]} == {field_id, hub.users["commander"]["id"]}
    # feeds: the parties view what the caller added, nothing else; nobody else views them at all
    status, term = await hub.call(
        "POST", "/api/v1/terminals", "commander", json={"name": "hall", "sip_uri": "sip:hall@127.0.0.1:5999", "region": "city"}
    )
    assert status == 201, term
    sdp = {"data": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "headers": {"Content-Type": "application/sdp"}}
    view = f"/api/v1/calls/{call['call_id']}/feeds/terminal/{term['id']}/view"
    got, reply = await hub.call("POST", view, "field1", **sdp)
    assert got == 404, reply  # not a feed of this call yet
    status, with_feed = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/feeds", "commander", json={"terminal_id": term["id"]})
    assert status == 200 and with_feed["terminal_ids"] == [term["id"]]
    got, reply = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/feeds", "field1", json={"terminal_id": term["id"]})
    assert got == 403, reply  # only staff add feeds
    got, reply = await hub.call("POST", view, "field1", **sdp)
    assert got == 409 and reply["error"]["code"] == "not_connected", reply  # registered, not dialled
    for path, user in ((view, "outsider"), (view.replace("/terminal/", "/camera/"), "field1"),
                       (view.replace("/terminal/", "/speaker/"), "field1")):
        got, reply = await hub.call("POST", path, user, **sdp)
        assert got == 404, (path, user, reply)
    status, _ = await hub.call("POST", f"/api/v1/calls/{call['call_id']}/hangup", "field1")
    assert status == 200
    ended = await _actions(hub, case_id, "call_ended", 2)
    assert [e["data"]["end_reason"] for e in ended] == ["declined", "hangup"]
    _, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
    assert not [a for a in case["attachments"] if a["kind"] == "snapshot"]


async def test_a_call_recording_is_attached_once_and_a_path_outside_the_data_dir_never(hub: RunningHub) -> None:
    case_id = await _case(hub)
    field_id = int(hub.users["field1"]["id"])
    rel = "recordings/calls/20260101/abc.mp4"
    body = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8  # served as stored; the hash is what counts
    (hub.app[CONFIG].data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (hub.app[CONFIG].data_dir / rel).write_bytes(body)
    base = {
        "recording_id": "r1", "call_id": "c1", "case_id": case_id, "user_id": field_id, "name": "Field 1",
        "started_at": 1_000.0, "ended_at": 1_012.5, "duration_s": 12.5, "has_audio": True,
        "sha256": hashlib.sha256(body).hexdigest(), "size": len(body),
    }
    bad = CallRecorded.model_validate({**base, "recording_id": "r0", "path": "../../etc/passwd.mp4"})
    await hub.app[BUS].publish(Topic.CALL_RECORDED, payload(bad))  # dropped: dispatch refuses the path
    msg = CallRecorded.model_validate({**base, "path": rel})
    for _ in range(2):  # redelivered: stored once
        await hub.app[BUS].publish(Topic.CALL_RECORDED, payload(msg))
    entries = await _actions(hub, case_id, "call_recording")
    await asyncio.sleep(0.5)
    _, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "commander")
    assert len([e for e in case["timeline"] if e["action"] == "call_recording"]) == 1
    recordings = [a for a in case["attachments"] if a["kind"] == "recording"]
    assert len(recordings) == 1 and recordings[0]["content_type"] == "video/mp4"
    data = entries[0]["data"]
    assert data["sha256"] == base["sha256"] and data["user_id"] == field_id and data["duration_s"] == 12.5
    assert data["attachment_id"] == recordings[0]["id"]
    async with hub.http.get(hub.url + recordings[0]["url"], headers=hub.auth("commander")) as resp:
        assert resp.status == 200 and await resp.read() == body
    async with hub.http.get(hub.url + recordings[0]["url"], headers=hub.auth("outsider")) as resp:
        assert resp.status in (403, 404)
