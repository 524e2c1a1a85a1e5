"""Cases through the workflow on a real database: happy path, rejection loop, timeline integrity,
roles, regions, concurrency, persistence."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fusionhub.dispatch.db import create_engine
from fusionhub.dispatch.errors import Conflict, Forbidden, Invalid, NotFound, TransitionRefused
from fusionhub.signaling.messages import Topic
from tests.dispatch.conftest import Env


def _png() -> bytes:
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok
    return png.tobytes()


def _jpeg() -> bytes:
    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 200, np.uint8))
    assert ok
    return jpeg.tobytes()


async def test_happy_path_flag_to_closed(env: Env) -> None:
    s = env.service
    flag, case = await env.filed_case()
    cid = case["id"]
    env.published.clear()

    dispatched = await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    assert dispatched["status"] == "dispatched" and dispatched["team_id"] == env.team("patrol")["id"]
    assert dispatched["team_name"] == "Patrol team 1"
    # roadside parking: 2 hours from dispatch
    assert dispatched["deadline_at"] == pytest.approx(dispatched["timeline"][-1]["at"] + 2 * 3600, abs=1e-3)
    [task] = dispatched["tasks"]
    assert task["status"] == "pending" and task["deadline_at"] == dispatched["deadline_at"]
    assert env.topics() == [Topic.CASE_CHANGED, Topic.TASK_CHANGED]
    pushed_task = env.published[1][1]
    assert pushed_task["region"] == "city" and pushed_task["team_id"] == env.team("patrol")["id"]
    assert pushed_task["case_title"] == case["title"]

    field = env.user("field1")
    assert [t["case_id"] for t in await s.list_tasks(field)] == [cid]
    assert await s.list_tasks(env.user("field2")) == []
    handling = await s.acknowledge_case(field, cid)
    assert handling["status"] == "handling"
    assert handling["tasks"][0]["status"] == "acknowledged"
    assert handling["tasks"][0]["acknowledged_by"] == field["id"]

    photo = _jpeg()
    handled = await s.report_handled(field, cid, "the car was moved", photo=photo, photo_type="image/jpeg")
    assert handled["status"] == "handled" and handled["tasks"][0]["status"] == "done"
    assert [a["kind"] for a in handled["attachments"]] == ["evidence", "photo"]
    path, ctype = await s.attachment_path(env.user("duty"), cid, handled["attachments"][1]["id"])
    assert ctype == "image/jpeg" and path.read_bytes() == photo
    assert path.parent == env.data_dir / "attachments" and path.suffix == ".jpg"

    closed = await s.verify_case(env.user("duty"), cid, note="checked on camera")
    assert closed["status"] == "closed"
    timeline = closed["timeline"]
    assert [e["action"] for e in timeline] == ["file", "dispatch", "acknowledge", "report", "verify"]
    assert [e["actor"]["username"] for e in timeline] == ["duty", "commander", "field1", "field1", "duty"]
    assert [(e["from_status"], e["to_status"]) for e in timeline] == [
        (None, "filed"), ("filed", "dispatched"), ("dispatched", "handling"), ("handling", "handled"),
        ("handled", "closed"),
    ]
    assert [e["seq"] for e in timeline] == [1, 2, 3, 4, 5]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert timeline[3]["note"] == "the car was moved" and timeline[4]["note"] == "checked on camera"
    assert len({e["hash"] for e in timeline}) == 5
    assert await s.verify_timeline(cid)
    assert await s.get_case(env.user("commander"), cid) == closed
    assert [c["id"] for c in await s.list_cases(env.user("duty"), "closed")] == [cid]
    # nothing more to do with a closed case
    with pytest.raises(TransitionRefused, match="closed"):
        await s.reject_case(env.user("duty"), cid, "too late")


async def test_reject_sends_it_back_and_the_task_reopens(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    field, duty = env.user("field1"), env.user("duty")
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    await s.acknowledge_case(field, cid)
    await s.report_handled(field, cid, "moved on")
    with pytest.raises(Invalid) as info:
        await s.reject_case(duty, cid, "  ")
    assert info.value.field == "note"
    back = await s.reject_case(duty, cid, "still parked there on the camera")
    assert back["status"] == "handling"
    assert back["tasks"][0]["status"] == "acknowledged" and back["tasks"][0]["done_at"] is None
    assert env.published[-1][0] == Topic.TASK_CHANGED and env.published[-1][1]["status"] == "acknowledged"
    with pytest.raises(TransitionRefused, match="handling"):
        await s.verify_case(duty, cid)
    await s.report_handled(field, cid, "towed away", photo=_png(), photo_type="image/png")
    closed = await s.verify_case(duty, cid)
    assert [e["action"] for e in closed["timeline"]] == [
        "file", "dispatch", "acknowledge", "report", "reject", "report", "verify"
    ]
    assert [e["actor"]["username"] for e in closed["timeline"]] == [
        "duty", "commander", "field1", "field1", "duty", "field1", "duty"
    ]
    assert closed["tasks"][0]["status"] == "done"
    assert await s.verify_timeline(cid)


async def test_refused_steps_leave_nothing_behind(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    with pytest.raises(TransitionRefused) as info:
        await s.verify_case(env.user("duty"), cid)
    assert "filed" in str(info.value) and "dispatch" in str(info.value)
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    with pytest.raises(TransitionRefused, match="dispatched"):
        await s.dispatch_case(env.user("commander"), cid, env.team("second")["id"])
    with pytest.raises(TransitionRefused, match="dispatched"):
        await s.report_handled(env.user("field1"), cid, "done", photo=_jpeg(), photo_type="image/jpeg")
    assert not (env.data_dir / "attachments").exists() or not any((env.data_dir / "attachments").iterdir())
    got = await s.get_case(env.user("duty"), cid)
    assert got["status"] == "dispatched" and len(got["timeline"]) == 2 and len(got["tasks"]) == 1
    assert await env.count("tasks") == 1 and await env.count("attachments") == 1


async def test_photo_rules(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    cid, field = case["id"], env.user("field1")
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    await s.acknowledge_case(field, cid)
    for photo, ptype, bad in [
        (b"<html></html>", "text/html", "photo_type"),
        (_png(), "image/jpeg", "photo"),  # the bytes are not what the type says
        (b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024), "image/jpeg", "photo"),  # over 5 MB
        (b"", "image/png", "photo"),
    ]:
        with pytest.raises(Invalid) as info:
            await s.report_handled(field, cid, "done", photo=photo, photo_type=ptype)
        assert info.value.field == bad
    with pytest.raises(Invalid):
        await s.report_handled(field, cid, "", photo=None)
    assert (await s.get_case(field, cid))["status"] == "handling"
    assert await env.count("attachments", "kind = 'photo'") == 0


async def test_timeline_tampering_is_detected(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    await s.acknowledge_case(env.user("field1"), cid)
    assert await s.verify_timeline(cid)
    # the database itself refuses edits of the timeline
    for sql in (f"UPDATE case_events SET note = 'x' WHERE case_id = {cid}", f"DELETE FROM case_events WHERE case_id = {cid}"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with env.engine.begin() as conn:
                await conn.execute(text(sql))
    # someone with full rights switches that off and rewrites who dispatched it
    async with env.engine.begin() as conn:
        if env.backend == "sqlite":
            await conn.execute(text("DROP TRIGGER case_events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only"))
        await conn.execute(
            text("UPDATE case_events SET actor_id = :uid WHERE case_id = :cid AND seq = 2"),
            {"uid": env.user("duty")["id"], "cid": cid},
        )
        if env.backend == "postgres":
            await conn.execute(text("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only"))
    assert not await s.verify_timeline(cid)
    # another case's chain is unaffected
    _, other = await env.filed_case()
    assert await s.verify_timeline(other["id"])
    with pytest.raises(NotFound):
        await s.verify_timeline(999_999)


async def test_a_timeline_cut_short_at_its_end_is_detected(env: Env) -> None:
    """Deleting the newest entries leaves a chain that still links up: the head kept on the case
    tells it is not the whole timeline any more."""
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    await s.acknowledge_case(env.user("field1"), cid)
    assert await s.verify_timeline(cid)
    async with env.engine.begin() as conn:
        if env.backend == "sqlite":
            await conn.execute(text("DROP TRIGGER case_events_no_delete"))
        else:
            await conn.execute(text("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only"))
        # hide that the team acknowledged it
        await conn.execute(text("DELETE FROM case_events WHERE case_id = :cid AND seq = 3"), {"cid": cid})
        if env.backend == "postgres":
            await conn.execute(text("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only"))
    assert not await s.verify_timeline(cid)
    page = await s.export_case(env.user("duty"), cid)
    assert "已损坏 BROKEN" in page and "entries missing from the end" in page


async def test_unknown_case_is_not_found(env: Env) -> None:
    s = env.service
    for call in (
        s.get_case(env.user("duty"), 999_999),
        s.dispatch_case(env.user("commander"), 999_999, env.team("patrol")["id"]),
        s.acknowledge_case(env.user("field1"), 999_999),
        s.verify_case(env.user("duty"), 999_999),
        s.reject_case(env.user("duty"), 999_999, "no"),
        s.attachment_path(env.user("duty"), 999_999, 1),
    ):
        with pytest.raises(NotFound):
            await call
    _, case = await env.filed_case()
    with pytest.raises(NotFound):
        await s.attachment_path(env.user("duty"), case["id"], 999_999)


async def test_roles_are_enforced(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    patrol = env.team("patrol")["id"]
    for who in ("duty", "field1", "admin"):
        with pytest.raises(Forbidden):
            await s.dispatch_case(env.user(who), cid, patrol)
    await s.dispatch_case(env.user("commander"), cid, patrol)
    for who in ("duty", "commander", "admin"):
        with pytest.raises(Forbidden):
            await s.acknowledge_case(env.user(who), cid)
    # a field member of another team cannot even see the case
    with pytest.raises(NotFound):
        await s.acknowledge_case(env.user("field2"), cid)
    with pytest.raises(NotFound):
        await s.get_case(env.user("field2"), cid)
    assert await s.list_cases(env.user("field2")) == []
    await s.acknowledge_case(env.user("field1"), cid)
    with pytest.raises(Forbidden):
        await s.report_handled(env.user("duty"), cid, "done")
    await s.report_handled(env.user("field1"), cid, "done")
    for who in ("field1", "commander", "admin"):
        with pytest.raises(Forbidden):
            await s.verify_case(env.user(who), cid)
        with pytest.raises(Forbidden):
            await s.reject_case(env.user(who), cid, "no")
    assert (await s.get_case(env.user("commander"), cid))["status"] == "handled"


async def test_dispatch_needs_a_team_in_the_region(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    for team_id in (env.team("far")["id"], 999_999):
        with pytest.raises(Invalid) as info:
            await s.dispatch_case(env.user("commander"), case["id"], team_id)
        assert info.value.field == "team_id"
    assert (await s.get_case(env.user("duty"), case["id"]))["status"] == "filed"
    assert await env.count("tasks") == 0


async def test_cases_are_scoped_to_regions(env: Env) -> None:
    s = env.service
    _, case = await env.filed_case()
    cid = case["id"]
    for name in ("outsider", "cityx", "west_duty"):
        user = env.user(name)
        assert await s.list_cases(user) == [] and await s.list_tasks(user) == []
        with pytest.raises(NotFound):
            await s.get_case(user, cid)
        with pytest.raises(NotFound):
            await s.verify_case(user, cid)
    # a case in a sub-region is visible from the region above
    cam, zone = await env.camera(region="city.west", name="West gate")
    flag = await s.record_flag(env.flag_msg(cam["id"], zone["id"]))
    _, west_case = await s.confirm_flag(env.user("west_duty"), flag["id"])
    assert [c["id"] for c in await s.list_cases(env.user("west_duty"))] == [west_case["id"]]
    assert [c["id"] for c in await s.list_cases(env.user("commander"))] == [west_case["id"], cid]
    assert "timeline" not in (await s.list_cases(env.user("commander")))[0]


async def test_concurrent_dispatch_exactly_one_wins(env: Env) -> None:
    _, case = await env.filed_case()
    cid = case["id"]
    other = env.new_service(create_engine(env.url))
    try:
        results = await asyncio.gather(
            env.service.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"]),
            other.dispatch_case(env.user("commander"), cid, env.team("second")["id"]),
            return_exceptions=True,
        )
    finally:
        await other.engine.dispose()
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, Conflict | TransitionRefused)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert "dispatched" in str(losses[0])
    final = await env.service.get_case(env.user("commander"), cid)
    assert final["status"] == "dispatched" and final["team_id"] == wins[0]["team_id"]
    assert await env.count("tasks") == 1
    assert await env.count("case_events", f"case_id = {cid}") == 2
    assert [t["team_id"] for t in final["tasks"]] == [wins[0]["team_id"]]
    assert await env.service.verify_timeline(cid)


async def test_records_survive_reopening_the_engine(env: Env) -> None:
    _, case = await env.filed_case()
    await env.service.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"])
    before = await env.service.get_case(env.user("duty"), case["id"])
    await env.engine.dispose()
    engine = create_engine(env.url)
    try:
        again = env.new_service(engine)
        assert await again.get_case(env.user("duty"), case["id"]) == before
        assert await again.verify_timeline(case["id"])
        assert await again.authenticate("field1", "correct horse battery") == env.user("field1")
        assert [c["id"] for c in await again.list_cameras(env.user("admin"))] == [before["camera_id"]]
    finally:
        await engine.dispose()


async def test_ten_whole_workflows_close_with_intact_timelines(env: Env) -> None:
    """Ten flags to closed cases back to back (throughput is measured in bench/cases.py, not here)."""
    s = env.service
    ids = []
    for i in range(10):
        # a camera each: a second flag of a zone whose case is open would join that case
        cam, zone = await env.camera(name=f"Gate {i}")
        flag = await s.record_flag(env.flag_msg(cam["id"], zone["id"]))
        ids.append((await s.confirm_flag(env.user("duty"), flag["id"]))[1]["id"])
    patrol = env.team("patrol")["id"]
    for cid in ids:
        await s.dispatch_case(env.user("commander"), cid, patrol)
        await s.acknowledge_case(env.user("field1"), cid)
        await s.report_handled(env.user("field1"), cid, "done")
        await s.verify_case(env.user("duty"), cid)
    closed = await s.list_cases(env.user("duty"), "closed")
    assert sorted(c["id"] for c in closed) == sorted(ids)
    assert all([await s.verify_timeline(cid) for cid in ids])


async def test_a_stale_writer_gets_conflict_with_the_current_status(env: Env) -> None:
    """Force the lost-update race: B commits between A's read and A's write; A's version check fails."""
    if env.backend == "sqlite":
        pytest.skip("SQLite queues writers (BEGIN IMMEDIATE): a writer never works on a stale read there")
    _, case = await env.filed_case()
    cid = case["id"]
    other = env.new_service(env.engine)

    async def step(session, case, actor, now):  # type: ignore[no-untyped-def]
        await other.dispatch_case(env.user("commander"), cid, env.team("second")["id"])
        return {}, None

    with pytest.raises(Conflict) as info:
        await env.service._transition(env.user("commander"), cid, "dispatch", None, step)
    assert info.value.current == "dispatched" and "now dispatched" in str(info.value)
    assert await env.count("case_events", f"case_id = {cid}") == 2
    assert await env.service.verify_timeline(cid)
