"""Push-to-talk rooms on record: who may join which, case rooms, bursts in the case timeline."""

from __future__ import annotations

import uuid

import pytest

from fusionhub.dispatch.errors import Forbidden, Invalid, NotFound
from fusionhub.signaling.messages import PttBurst, Topic

from .conftest import Env


def ids(rooms: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [r["id"] for r in rooms]


async def test_rooms_follow_team_and_region(env: Env) -> None:
    patrol, second = env.team("patrol")["id"], env.team("second")["id"]
    assert ids(await env.service.list_rooms(env.user("field1"))) == [f"team:{patrol}", "region:city"]
    assert ids(await env.service.list_rooms(env.user("field2"))) == [f"team:{second}", "region:city"]
    commander = ids(await env.service.list_rooms(env.user("commander")))
    assert commander == [f"team:{patrol}", f"team:{second}", "region:city"]
    assert ids(await env.service.list_rooms(env.user("outsider"))) == [f"team:{env.team('far')['id']}", "region:elsewhere"]
    with pytest.raises(Forbidden):
        await env.service.list_rooms(env.user("admin"))


async def test_joining_is_limited_to_members(env: Env) -> None:
    patrol = env.team("patrol")["id"]
    room = await env.service.get_room(env.user("field1"), f"team:{patrol}")
    assert room == {
        "id": f"team:{patrol}", "kind": "team", "name": "Patrol team 1", "region": "city",
        "team_ids": [patrol], "case_id": None,
    }
    await env.service.get_room(env.user("commander"), f"team:{patrol}")
    await env.service.get_room(env.user("west_duty"), "region:city")  # below the region: a member
    await env.service.get_room(env.user("commander"), "region:city.west")  # staff above it
    for user, room_id in [
        ("field2", f"team:{patrol}"),  # another team
        ("outsider", f"team:{patrol}"),  # another region
        ("cityx", "region:city"),  # a region that merely starts with the same letters
        ("field1", "region:elsewhere"),
        ("field1", "case:1"),
        ("commander", "nonsense"),
        ("commander", "team:x"),
    ]:
        with pytest.raises(NotFound):
            await env.service.get_room(env.user(user), room_id)


async def test_case_room_takes_dispatched_and_nearby_teams(env: Env) -> None:
    _, case = await env.filed_case()
    patrol, second, far = env.team("patrol")["id"], env.team("second")["id"], env.team("far")["id"]
    with pytest.raises(Forbidden):
        await env.service.open_case_room(env.user("duty"), case["id"])
    # no task yet, no team named: the teams of the case's region
    room = await env.service.open_case_room(env.user("commander"), case["id"])
    assert room["id"] == f"case:{case['id']}" and room["case_id"] == case["id"]
    assert sorted(room["team_ids"]) == sorted([patrol, second])
    with pytest.raises(Invalid):
        await env.service.open_case_room(env.user("commander"), case["id"], [far])  # not in the region
    with pytest.raises(NotFound):
        await env.service.open_case_room(env.user("commander"), 999_999)
    assert f"case:{case['id']}" in ids(await env.service.list_rooms(env.user("field2")))
    assert f"case:{case['id']}" not in ids(await env.service.list_rooms(env.user("outsider")))


async def test_case_room_of_a_dispatched_case_is_its_team(env: Env) -> None:
    _, case = await env.filed_case()
    patrol = env.team("patrol")["id"]
    await env.service.dispatch_case(env.user("commander"), case["id"], patrol)
    room = await env.service.open_case_room(env.user("commander"), case["id"])
    assert room["team_ids"] == [patrol]
    await env.service.get_room(env.user("field1"), room["id"])
    with pytest.raises(NotFound):
        await env.service.get_room(env.user("field2"), room["id"])
    # widened later by a nearby team; asking again is idempotent
    widened = await env.service.open_case_room(env.user("commander"), case["id"], [env.team("second")["id"]])
    again = await env.service.open_case_room(env.user("commander"), case["id"], [env.team("second")["id"]])
    assert widened["team_ids"] == again["team_ids"] == [patrol, env.team("second")["id"]]


def burst_msg(env: Env, room_id: str, case_id: int | None, speaker: str = "field1") -> PttBurst:
    burst_id = str(uuid.uuid4())
    rel = f"recordings/ptt/test/{burst_id}.ogg"
    (env.data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (env.data_dir / rel).write_bytes(b"OggS fake")
    now = env.clock.t
    user = env.user(speaker)
    return PttBurst(
        burst_id=burst_id, room_id=room_id, case_id=case_id, speaker_id=user["id"], speaker_name=user["display_name"],
        started_at=now - 3, ended_at=now, end_reason="released", duration_s=2.96, packets=148,
        path=rel, sha256="a" * 64, size=9,
    )


async def test_case_burst_joins_the_timeline_once(env: Env) -> None:
    _, case = await env.filed_case()
    await env.service.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"])
    room = await env.service.open_case_room(env.user("commander"), case["id"])
    msg = burst_msg(env, room["id"], case["id"])
    env.published.clear()
    assert await env.service.record_ptt_burst(msg) is True
    assert await env.service.record_ptt_burst(msg) is False  # redelivered: stored once
    assert env.topics() == [Topic.CASE_CHANGED]
    detail = await env.service.get_case(env.user("commander"), case["id"])
    entry = detail["timeline"][-1]
    assert entry["action"] == "ptt_burst" and entry["actor"]["username"] == "field1"
    assert entry["from_status"] == entry["to_status"] == "dispatched"
    assert entry["data"]["sha256"] == "a" * 64 and entry["data"]["url"] == f"/api/v1/bursts/{msg.burst_id}/audio"
    assert entry["data"]["duration_s"] == 2.96
    assert await env.service.verify_timeline(case["id"])
    bursts = await env.service.list_bursts(env.user("field1"), room["id"])
    assert [b["id"] for b in bursts] == [msg.burst_id]
    assert (await env.service.burst_file(env.user("field1"), msg.burst_id)).read_bytes() == b"OggS fake"
    assert (await env.service.burst_file(env.user("duty"), msg.burst_id)).is_file()  # sees the case
    for user in ("field2", "outsider"):
        with pytest.raises(NotFound):
            await env.service.burst_file(env.user(user), msg.burst_id)


async def test_team_burst_is_kept_without_a_case(env: Env) -> None:
    patrol = env.team("patrol")["id"]
    msg = burst_msg(env, f"team:{patrol}", None)
    assert await env.service.record_ptt_burst(msg)
    assert env.topics() == []
    assert [b["speaker_name"] for b in await env.service.list_bursts(env.user("commander"), f"team:{patrol}")] == ["Field1"]
    with pytest.raises(NotFound):
        await env.service.burst_file(env.user("field2"), msg.burst_id)
    with pytest.raises(NotFound):
        await env.service.list_bursts(env.user("field2"), f"team:{patrol}")


async def test_burst_outside_the_data_directory_is_refused(env: Env) -> None:
    msg = burst_msg(env, "region:city", None).model_copy(update={"path": "../../etc/passwd"})
    with pytest.raises(Invalid):
        await env.service.record_ptt_burst(msg)
    assert await env.count("ptt_bursts") == 0
