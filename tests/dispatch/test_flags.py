"""The review queue: flags stored once, confirmed into cases in one transaction, or dismissed."""

from __future__ import annotations

import asyncio

import pytest

from fusionhub.dispatch.errors import AlreadyReviewed, Forbidden, Invalid, NotFound
from fusionhub.signaling.messages import Topic
from tests.dispatch.conftest import Env


async def test_record_flag_is_idempotent(env: Env) -> None:
    cam, zone = await env.camera()
    msg = env.flag_msg(cam["id"], zone["id"])
    first = await env.service.record_flag(msg)
    again = await env.service.record_flag(msg)
    both = await asyncio.gather(env.service.record_flag(msg), env.service.record_flag(msg))
    assert again == first and all(f == first for f in both)
    assert await env.count("flags") == 1
    assert env.topics().count(Topic.FLAG_CREATED) == 1
    assert first["status"] == "pending" and first["region"] == "city"
    assert first["camera_name"] == "Gate 3" and first["zone_name"] == "lane" and first["zone_id"] == zone["id"]
    assert first["boxes"][0]["label"] == "car" and first["boxes"][0]["track_id"] == 3
    assert first["raised_at"] == pytest.approx(msg.raised_at, abs=1e-6)
    assert first["evidence_url"] == f"/api/v1/flags/{msg.flag_id}/evidence.jpg"


async def test_flag_for_an_unknown_camera_is_refused_as_malformed(env: Env) -> None:
    msg = env.flag_msg(999, 1)
    with pytest.raises(Invalid) as info:
        await env.service.record_flag(msg)
    assert isinstance(info.value, ValueError) and info.value.field == "camera_id"
    cam, zone = await env.camera()
    bad = env.flag_msg(cam["id"], zone["id"]).model_copy(update={"evidence_path": "../../etc/passwd"})
    with pytest.raises(Invalid):
        await env.service.record_flag(bad)
    assert await env.count("flags") == 0


async def test_review_queue_lists_newest_first_and_filters(env: Env) -> None:
    cam, zone = await env.camera()
    ids = []
    for _ in range(3):
        env.clock.t += 10
        ids.append((await env.service.record_flag(env.flag_msg(cam["id"], zone["id"])))["id"])
    duty = env.user("duty")
    assert [f["id"] for f in await env.service.list_flags(duty, "pending")] == ids[::-1]
    await env.service.dismiss_flag(duty, ids[0], "a delivery van, allowed")
    assert [f["id"] for f in await env.service.list_flags(duty, "pending")] == ids[:0:-1]
    assert [f["id"] for f in await env.service.list_flags(duty, "dismissed")] == [ids[0]]
    assert len(await env.service.list_flags(duty)) == 3
    with pytest.raises(Invalid):
        await env.service.list_flags(duty, "open")
    with pytest.raises(Forbidden):
        await env.service.list_flags(env.user("field1"))


async def test_confirm_files_a_case_with_evidence_in_one_go(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    env.published.clear()
    flag_out, case = await env.service.confirm_flag(env.user("duty"), flag["id"], note="blocking the lane")
    assert flag_out["status"] == "confirmed" and flag_out["case_id"] == case["id"]
    assert flag_out["reviewed_by"] == env.user("duty")["id"] and flag_out["reviewed_at"] is not None
    assert case["status"] == "filed" and case["source"] == "video_ai"
    assert case["category"] == "roadside_parking" and case["category_name"] == "占道停车"
    assert case["camera_id"] == cam["id"] and case["zone_id"] == zone["id"] and case["flag_id"] == flag["id"]
    assert case["location"] == "Gate 3 / lane" and case["region"] == "city"
    assert [a["kind"] for a in case["attachments"]] == ["evidence"]
    [event] = case["timeline"]
    assert (event["action"], event["from_status"], event["to_status"]) == ("file", None, "filed")
    assert event["actor"]["username"] == "duty" and event["note"] == "blocking the lane"
    assert env.topics() == [Topic.FLAG_REVIEWED, Topic.CASE_CHANGED]
    assert "timeline" not in env.published[1][1] and env.published[1][1]["region"] == "city"
    # the evidence is served from the case too
    path, ctype = await env.service.attachment_path(env.user("commander"), case["id"], case["attachments"][0]["id"])
    assert ctype == "image/jpeg" and path.read_bytes()[:2] == b"\xff\xd8"
    assert path == await env.service.flag_evidence_path(env.user("duty"), flag["id"])
    assert await env.service.verify_timeline(case["id"])


async def test_confirm_with_a_chosen_category(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    with pytest.raises(Invalid) as info:
        await env.service.confirm_flag(env.user("duty"), flag["id"], category="no_such_thing")
    assert info.value.field == "category"
    assert (await env.service.get_flag(env.user("duty"), flag["id"]))["status"] == "pending"
    _, case = await env.service.confirm_flag(env.user("duty"), flag["id"], category="piled_materials")
    assert case["category"] == "piled_materials" and case["category_name"] == "乱堆物料"


async def test_reviewing_twice_is_already_reviewed(env: Env) -> None:
    cam, zone = await env.camera()
    duty = env.user("duty")
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    await env.service.confirm_flag(duty, flag["id"])
    with pytest.raises(AlreadyReviewed):
        await env.service.confirm_flag(duty, flag["id"])
    with pytest.raises(AlreadyReviewed):
        await env.service.dismiss_flag(duty, flag["id"], "changed my mind")
    # another camera: a flag from the first zone would join its open case instead (test_review.py)
    cam2, zone2 = await env.camera(name="Gate 4")
    other = await env.service.record_flag(env.flag_msg(cam2["id"], zone2["id"]))
    await env.service.dismiss_flag(duty, other["id"], "a parked ambulance on call")
    with pytest.raises(AlreadyReviewed):
        await env.service.confirm_flag(duty, other["id"])
    assert await env.count("cases") == 1


async def test_two_reviewers_racing_file_exactly_one_case(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    second = env.new_service(env.engine)
    results = await asyncio.gather(
        env.service.confirm_flag(env.user("duty"), flag["id"]),
        second.confirm_flag(env.user("duty"), flag["id"]),
        return_exceptions=True,
    )
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, AlreadyReviewed) for r in results) == 1
    assert await env.count("cases") == 1 and await env.count("case_events") == 1
    assert await env.count("attachments") == 1


async def test_dismiss_needs_a_reason(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    for reason in ("", "   "):
        with pytest.raises(Invalid) as info:
            await env.service.dismiss_flag(env.user("duty"), flag["id"], reason)
        assert info.value.field == "reason"
    out = await env.service.dismiss_flag(env.user("duty"), flag["id"], " false alarm: shadow ")
    assert out["status"] == "dismissed" and out["dismiss_reason"] == "false alarm: shadow"
    assert env.topics()[-1] == Topic.FLAG_REVIEWED and await env.count("cases") == 0


async def test_flags_are_scoped_to_regions_and_roles(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    for outsider in ("outsider", "cityx", "west_duty"):
        user = env.user(outsider)
        assert await env.service.list_flags(user) == []
        with pytest.raises(NotFound):
            await env.service.get_flag(user, flag["id"])
        with pytest.raises(NotFound):
            await env.service.confirm_flag(user, flag["id"])
        with pytest.raises(NotFound):
            await env.service.flag_evidence_path(user, flag["id"])
    for role in ("commander", "field1", "admin"):
        with pytest.raises(Forbidden):
            await env.service.confirm_flag(env.user(role), flag["id"])
        with pytest.raises(Forbidden):
            await env.service.dismiss_flag(env.user(role), flag["id"], "no")
    with pytest.raises(NotFound):
        await env.service.confirm_flag(env.user("duty"), "no-such-flag")
    assert (await env.service.get_flag(env.user("commander"), flag["id"]))["status"] == "pending"


async def test_missing_evidence_file_is_not_found(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"], evidence=False))
    with pytest.raises(NotFound):
        await env.service.flag_evidence_path(env.user("duty"), flag["id"])
    _, case = await env.service.confirm_flag(env.user("duty"), flag["id"])
    assert case["status"] == "filed" and case["attachments"] == []


async def test_flag_whose_picture_could_not_be_written_still_reaches_the_queue(env: Env) -> None:
    """Analytics sends an empty evidence path when writing the JPEG failed: the flag must not be lost."""
    cam, zone = await env.camera()
    msg = env.flag_msg(cam["id"], zone["id"], evidence=False).model_copy(update={"evidence_path": ""})
    flag = await env.service.record_flag(msg)
    assert flag["status"] == "pending"
    with pytest.raises(NotFound):
        await env.service.flag_evidence_path(env.user("duty"), flag["id"])
    _, case = await env.service.confirm_flag(env.user("duty"), flag["id"])
    assert case["status"] == "filed" and case["attachments"] == []
