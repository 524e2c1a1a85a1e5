"""Push-to-talk over the real hub: rooms by role and region, joining with aiortc peers, the floor,
the operator override, and bursts recorded into the case timeline (PyAV plays them back)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from bench.ptt_client import PttClient, http_exchange, tone_cycle
from tests.console.hubrunner import RunningHub, hub_config, raise_flag, running_hub

CAMERA_URL = "rtsp://127.0.0.1:9/stream1"  # port 9: nothing listens


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    config = hub_config(
        tmp_path / "var",
        model_data_dir,
        analytics={"local_workers": 0},
        intercom={"floor": {"no_media_s": 2.0, "max_talk_s": 20.0, "grace_s": 0.5}},
    )
    async with running_hub(config) as running:
        for name in ("admin", "commander", "duty", "field1", "outsider"):
            await running.login(name)
        yield running


async def case_id(hub: RunningHub) -> int:
    status, cam = await hub.call("POST", "/api/v1/cameras", "admin", json={"name": "Gate", "url": CAMERA_URL, "region": "city"})
    assert status == 201, cam
    status, zone = await hub.call(
        "POST", f"/api/v1/cameras/{cam['id']}/zones", "admin",
        json={"name": "lane", "kind": "road", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 5},
    )
    assert status == 201, zone
    flag_id = await raise_flag(hub, cam["id"], zone["id"])
    status, body = await hub.call("POST", f"/api/v1/flags/{flag_id}/confirm", "duty", json={})
    assert status == 201, body
    return int(body["case"]["id"])


async def join(hub: RunningHub, room_id: str, username: str, index: int) -> PttClient:
    client = PttClient(index, tone_cycle(), keep_payloads=True)
    await client.connect(http_exchange(hub.http, f"{hub.url}/api/v1/rooms/{room_id}/join", hub.auth(username)))
    await client.expect("hello")
    return client


async def test_rooms_are_listed_by_role_and_region(hub: RunningHub) -> None:
    team = hub.teams["patrol"]["id"]
    status, body = await hub.call("GET", "/api/v1/rooms")
    assert status == 401
    status, body = await hub.call("GET", "/api/v1/rooms", "admin")
    assert status == 403
    status, rooms = await hub.call("GET", "/api/v1/rooms", "field1")
    assert status == 200
    assert [r["id"] for r in rooms] == [f"team:{team}", "region:city"]
    assert rooms[0]["floor"]["state"] == "idle" and rooms[0]["participants"] == []
    status, body = await hub.call("GET", f"/api/v1/rooms/team:{team}", "outsider")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await hub.call("POST", "/api/v1/rooms", "duty", json={"case_id": 1})
    assert status == 403
    status, body = await hub.call("POST", "/api/v1/rooms", "commander", json={"case_id": "x"})
    assert status == 422
    status, body = await hub.call("POST", "/api/v1/rooms", "commander", json={"case_id": 424242})
    assert status == 404


async def test_bad_joins_are_refused_and_change_nothing(hub: RunningHub) -> None:
    team = hub.teams["patrol"]["id"]
    url = f"/api/v1/rooms/team:{team}/join"
    status, body = await hub.call("POST", url, "field1", data="v=0", headers={"Content-Type": "text/plain"})
    assert status == 415
    status, body = await hub.call("POST", url, "field1", data="v=0\r\nm=video 9", headers={"Content-Type": "application/sdp"})
    assert status == 400 and body["error"]["code"] == "invalid_sdp"
    status, body = await hub.call("POST", url, "outsider", data="v=0\r\nm=audio 9", headers={"Content-Type": "application/sdp"})
    assert status == 404
    status, room = await hub.call("GET", f"/api/v1/rooms/team:{team}", "field1")
    assert room["participants"] == []


async def test_floor_preemption_and_bursts_in_the_case_timeline(hub: RunningHub) -> None:
    cid = await case_id(hub)
    status, room = await hub.call("POST", "/api/v1/rooms", "commander", json={"case_id": cid})
    assert status == 201, room
    assert room["id"] == f"case:{cid}" and room["team_ids"] == [hub.teams["patrol"]["id"]]
    room_id = room["id"]
    field = await join(hub, room_id, "field1", 1)
    duty = await join(hub, room_id, "duty", 2)
    commander = await join(hub, room_id, "commander", 3)
    try:
        status, live = await hub.call("GET", f"/api/v1/rooms/{room_id}", "duty")
        assert {p["name"] for p in live["participants"]} == {"Field Zhao", "Duty Wang", "Commander Li"}

        assert (await field.request())["type"] == "granted"
        async with asyncio.timeout(5):
            while len(duty.payloads) < 25:
                await asyncio.sleep(0.05)
        status, live = await hub.call("GET", f"/api/v1/rooms/{room_id}", "commander")
        assert live["floor"]["state"] == "taken" and live["floor"]["holder"]["name"] == "Field Zhao"

        # the commander pre-empts the field member at once
        assert (await commander.request())["type"] == "granted"
        revoked = await field.expect("revoked")
        assert revoked["reason"] == "preempted"
        field.track.stop_talking()
        async with asyncio.timeout(5):
            while len(field.payloads) < 25:  # now the field member hears the commander
                await asyncio.sleep(0.05)
        status, live = await hub.call("GET", f"/api/v1/rooms/{room_id}", "field1")
        assert live["floor"]["holder"]["name"] == "Commander Li" and live["floor"]["holder"]["priority"] == 200

        # the duty officer (lower than the commander) waits in the queue, position told
        assert (await duty.request()) == {"type": "queued", "position": 1}
        # the commander's override endpoint takes the floor back; the queue moves on
        status, live = await hub.call("POST", f"/api/v1/rooms/{room_id}/revoke", "commander")
        assert status == 200
        assert (await duty.expect("granted"))["type"] == "granted"
        duty.track.start_talking()
        await asyncio.sleep(0.6)
        duty.release()
        commander.track.stop_talking()

        # three bursts (field, commander, duty) land in the case timeline, each playable
        async with asyncio.timeout(10):
            while True:
                status, case = await hub.call("GET", f"/api/v1/cases/{cid}", "commander")
                bursts = [e for e in case["timeline"] if e["action"] == "ptt_burst"]
                if len(bursts) >= 3:
                    break
                await asyncio.sleep(0.1)
        speakers = [b["actor"]["username"] for b in bursts]
        assert speakers == ["field1", "commander", "duty"]
        assert [b["data"]["end_reason"] for b in bursts] == ["preempted", "preempted", "released"]
        for entry in bursts:
            data: dict[str, Any] = entry["data"]
            status, audio = await hub.call("GET", data["url"], "field1")
            assert status == 200 and audio[:4] == b"OggS"
            assert hashlib.sha256(audio).hexdigest() == data["sha256"]
            with av.open(io.BytesIO(audio)) as container:
                stream = container.streams.audio[0]
                seconds = sum(f.samples for f in container.decode(stream)) / 48_000
            assert abs(seconds - data["duration_s"]) < 0.1
            assert abs(seconds - (data["ended_at"] - data["started_at"])) < 0.6
        status, listed = await hub.call("GET", f"/api/v1/rooms/{room_id}/bursts", "duty")
        assert status == 200 and len(listed) == 3
        status, _ = await hub.call("GET", bursts[0]["data"]["url"], "outsider")
        assert status == 404
    finally:
        for client in (field, duty, commander):
            await client.close()


async def test_leaving_needs_the_owner(hub: RunningHub) -> None:
    team = hub.teams["patrol"]["id"]
    client = PttClient(1, tone_cycle())
    location: dict[str, str] = {}

    async def exchange(offer: str) -> str:
        async with hub.http.post(
            f"{hub.url}/api/v1/rooms/team:{team}/join", data=offer,
            headers={"Content-Type": "application/sdp", **hub.auth("field1")},
        ) as resp:
            assert resp.status == 201
            location["url"] = resp.headers["Location"]
            return await resp.text()

    await client.connect(exchange)
    try:
        status, _ = await hub.call("DELETE", location["url"], "commander")
        assert status == 404
        status, _ = await hub.call("DELETE", location["url"], "field1")
        assert status == 204
        status, room = await hub.call("GET", f"/api/v1/rooms/team:{team}", "field1")
        assert room["participants"] == []
    finally:
        await client.close()
