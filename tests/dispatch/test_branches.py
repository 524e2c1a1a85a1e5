"""Every branch of the workflow on SQLite and PostgreSQL: intake (manual, hotline, patrol), file or
refuse, manual and rule-based dispatch (to a team or a named person), return and re-dispatch,
progress, extension approved or refused, suspension and resumption, return visit; refused
transitions, roles, concurrent actions, and the timeline's hash chain through all of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from fusionhub.dispatch.db import create_engine
from fusionhub.dispatch.errors import Conflict, Forbidden, Invalid, NotFound, TransitionRefused
from fusionhub.signaling.messages import Topic
from tests.dispatch.conftest import Env

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2025, 9, 15, 9, 0, tzinfo=SH).timestamp()  # a working Monday, 09:00 in Beijing


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).astimezone(SH)


def _jpeg() -> bytes:
    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 120, np.uint8))
    assert ok
    return jpeg.tobytes()


async def _reported(env: Env, category: str = "exposed_garbage", by: str = "duty", source: str = "hotline") -> dict[str, Any]:
    return await env.service.create_case(
        env.user(by), source=source, category=category, location="No. 5 Jiefang Road",
        description="rubbish bags on the pavement", contact="Ms Chen 138-0000-0000" if source == "hotline" else None,
    )


async def _dispatched(env: Env, category: str = "exposed_garbage", team: str = "patrol") -> dict[str, Any]:
    case = await _reported(env, category)
    await env.service.file_case(env.user("duty"), case["id"])
    return await env.service.dispatch_case(env.user("commander"), case["id"], env.team(team)["id"])


def _actions(case: dict[str, Any]) -> list[str]:
    return [e["action"] for e in case["timeline"]]


async def test_hotline_case_filed_dispatched_handled_closed_and_evaluated(env: Env) -> None:
    env.clock.t = MONDAY_9
    s = env.service
    case = await _reported(env)
    assert case["status"] == "reported" and case["source"] == "hotline"
    assert case["contact"] == "Ms Chen 138-0000-0000" and case["description"] == "rubbish bags on the pavement"
    assert case["clock"] is None and case["deadline_at"] is None
    assert case["reported_by"] == env.user("duty")["id"]
    filed = await s.file_case(env.user("duty"), case["id"], note="confirmed by phone")
    assert filed["status"] == "filed"
    # exposed garbage: 1 working hour to dispatch, counted from filing (09:00 → 10:00)
    assert filed["clock"]["stage"] == "dispatch" and filed["clock"]["state"] == "running"
    assert _local(filed["clock"]["due_at"]).strftime("%H:%M") == "10:00"
    assert filed["deadline_at"] == filed["clock"]["due_at"]
    dispatched = await s.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"])
    # 4 working hours to handle, from 09:00 on a Monday: 09:00-12:00 + 13:30-14:30
    assert dispatched["clock"]["stage"] == "handle"
    assert _local(dispatched["deadline_at"]).strftime("%H:%M") == "14:30"
    assert dispatched["tasks"][0]["deadline_at"] == dispatched["deadline_at"]
    await s.acknowledge_case(env.user("field1"), case["id"])
    await s.progress_case(env.user("field1"), case["id"], "cleaning crew on the way")
    handled = await s.report_handled(env.user("field1"), case["id"], "cleared", photo=_jpeg(), photo_type="image/jpeg")
    assert handled["status"] == "handled" and handled["clock"]["paused"]
    closed = await s.verify_case(env.user("duty"), case["id"])
    assert closed["clock"]["state"] == "stopped"
    with pytest.raises(Invalid) as info:
        await s.evaluate_case(env.user("duty"), case["id"], 6)
    assert info.value.field == "score"
    evaluated = await s.evaluate_case(env.user("duty"), case["id"], 5, note="caller satisfied")
    assert evaluated["status"] == "evaluated" and evaluated["satisfaction"] == 5
    assert _actions(evaluated) == ["intake", "file", "dispatch", "acknowledge", "progress", "report", "verify", "evaluate"]
    assert evaluated["timeline"][-1]["note"] == "caller satisfied"
    with pytest.raises(TransitionRefused, match="evaluated case allows no further action"):
        await s.evaluate_case(env.user("duty"), case["id"], 4)
    assert await s.verify_timeline(case["id"])


async def test_intake_rules_roles_and_regions(env: Env) -> None:
    s = env.service
    with pytest.raises(Forbidden):
        await _reported(env, by="admin")
    with pytest.raises(Forbidden, match="patrol"):
        await _reported(env, by="field1", source="hotline")
    with pytest.raises(Invalid) as info:
        await s.create_case(env.user("duty"), source="email", category="dirty_road", location="x")
    assert info.value.field == "source"
    with pytest.raises(Invalid) as info:
        await s.create_case(env.user("duty"), source="manual", category="no_such", location="x")
    assert info.value.field == "category"
    with pytest.raises(Invalid) as info:
        await s.create_case(env.user("duty"), source="manual", category="dirty_road", location="  ")
    assert info.value.field == "location"
    with pytest.raises(Invalid) as info:
        await s.create_case(env.user("west_duty"), source="manual", category="dirty_road", location="x", region="city")
    assert info.value.field == "region"
    with pytest.raises(Invalid) as info:
        await s.create_case(
            env.user("duty"), source="manual", category="dirty_road", location="x", photo=b"<html>", photo_type="text/html"
        )
    assert await env.count("cases") == 0
    # a sub-region of one's own is fine; the case belongs there
    west = await s.create_case(env.user("duty"), source="manual", category="dirty_road", location="x", region="city.west")
    assert west["region"] == "city.west" and [c["id"] for c in await s.list_cases(env.user("west_duty"))] == [west["id"]]
    # a patrol report, with a photo: the reporter sees it, another field member does not
    patrol = await s.create_case(
        env.user("field1"), source="patrol", category="manhole_cover", location="Gate 3",
        photo=_jpeg(), photo_type="image/jpeg",
    )
    assert patrol["status"] == "reported" and [a["kind"] for a in patrol["attachments"]] == ["photo"]
    assert patrol["timeline"][0]["data"]["photo_sha256"]
    assert [c["id"] for c in await s.list_cases(env.user("field1"))] == [patrol["id"]]
    assert (await s.get_case(env.user("field1"), patrol["id"]))["id"] == patrol["id"]
    with pytest.raises(NotFound):
        await s.get_case(env.user("field2"), patrol["id"])
    # only the centre files
    with pytest.raises(Forbidden):
        await s.file_case(env.user("field1"), patrol["id"])
    assert Topic.CASE_CHANGED in env.topics()


async def test_refuse_to_file_needs_a_reason_and_is_final(env: Env) -> None:
    s = env.service
    case = await _reported(env)
    with pytest.raises(Invalid) as info:
        await s.refuse_case(env.user("duty"), case["id"], " ")
    assert info.value.field == "note"
    refused = await s.refuse_case(env.user("duty"), case["id"], "duplicate of an open case")
    assert refused["status"] == "refused" and refused["timeline"][-1]["note"] == "duplicate of an open case"
    for call in (
        s.file_case(env.user("duty"), case["id"]),
        s.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"]),
        s.refuse_case(env.user("duty"), case["id"], "again"),
    ):
        with pytest.raises(TransitionRefused, match="refused case allows no further action") as refusal:
            await call
        assert refusal.value.current == "refused"
    # filing with a corrected category records both
    other = await _reported(env, category="dirty_road")
    filed = await s.file_case(env.user("commander"), other["id"], category="piled_materials")
    assert filed["category"] == "piled_materials"
    assert filed["timeline"][-1]["data"]["previous_category"] == "dirty_road"


async def test_dispatch_to_a_named_person(env: Env) -> None:
    s = env.service
    case = await _reported(env)
    await s.file_case(env.user("duty"), case["id"])
    with pytest.raises(Invalid) as info:  # field2 is not in team patrol
        await s.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"], user_id=env.user("field2")["id"])
    assert info.value.field == "user_id"
    out = await s.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"], user_id=env.user("field1")["id"])
    assert out["tasks"][0]["assignee_id"] == env.user("field1")["id"]
    assert out["timeline"][-1]["data"]["assignee_name"] == "Field1"


async def test_auto_dispatch_by_rules(env: Env) -> None:
    s = env.service
    admin = env.user("admin")
    patrol, second = env.team("patrol")["id"], env.team("second")["id"]
    assert await s.list_dispatch_rules(admin) == []
    for bad, field in [
        ([{"region": "city", "team_id": 999_999}], "rules[0].team_id"),
        ([{"region": "elsewhere", "team_id": patrol}], "rules[0].region"),
        ([{"region": "city", "team_id": patrol, "category": "nope"}], "rules[0].category"),
        ([{"region": "city", "team_id": patrol, "user_id": env.user("field2")["id"]}], "rules[0].user_id"),
        ([{"region": "city", "team_id": patrol, "colour": "red"}], "rules[0]"),
    ]:
        with pytest.raises(Invalid) as info:
            await s.replace_dispatch_rules(admin, bad)
        assert info.value.field == field
    with pytest.raises(Forbidden):
        await s.replace_dispatch_rules(env.user("commander"), [])
    rules = await s.replace_dispatch_rules(
        admin,
        [
            {"region": "city", "team_id": second, "note": "anything else in the city"},
            {"region": "city", "category": "manhole_cover", "team_id": patrol, "user_id": env.user("field1")["id"]},
            {"region": "city.west", "team_id": patrol},
        ],
    )
    assert [r["team_name"] for r in rules] == ["Patrol team 2", "Patrol team 1", "Patrol team 1"]
    assert (await s.list_dispatch_rules(env.user("commander"))) == rules

    async def auto(category: str, region: str = "city") -> dict[str, Any]:
        case = await s.create_case(env.user("duty"), source="manual", category=category, location="x", region=region)
        await s.file_case(env.user("duty"), case["id"])
        return await s.dispatch_case(env.user("commander"), case["id"])

    manhole = await auto("manhole_cover")  # the category rule beats the catch-all: to the named person
    assert manhole["team_id"] == patrol and manhole["tasks"][0]["assignee_id"] == env.user("field1")["id"]
    assert manhole["timeline"][-1]["data"]["rule_id"] == rules[1]["id"]
    garbage = await auto("exposed_garbage")
    assert garbage["team_id"] == second and garbage["tasks"][0]["assignee_id"] is None
    west = await auto("exposed_garbage", region="city.west")  # the deeper region wins
    assert west["team_id"] == patrol
    # no rule for a case: say so, change nothing
    await s.replace_dispatch_rules(admin, [])
    case = await s.create_case(env.user("duty"), source="manual", category="dirty_road", location="x")
    await s.file_case(env.user("duty"), case["id"])
    with pytest.raises(Invalid, match="no auto-dispatch rule") as info:
        await s.dispatch_case(env.user("commander"), case["id"])
    assert info.value.field == "team_id"
    assert (await s.get_case(env.user("duty"), case["id"]))["status"] == "filed"


async def test_return_as_not_our_remit_and_redispatch(env: Env) -> None:
    env.clock.t = MONDAY_9
    s = env.service
    case = await _dispatched(env)
    cid = case["id"]
    with pytest.raises(Invalid):
        await s.return_case(env.user("field1"), cid, "")
    with pytest.raises(Forbidden):
        await s.return_case(env.user("duty"), cid, "not ours")
    env.clock.t = MONDAY_9 + 3600
    returned = await s.return_case(env.user("field1"), cid, "this street belongs to the next district")
    assert returned["status"] == "returned" and returned["team_id"] is None
    assert returned["tasks"][0]["status"] == "returned"
    assert returned["clock"]["stage"] == "dispatch"  # the centre's dispatch clock runs again
    with pytest.raises(TransitionRefused, match="returned") as info:
        await s.acknowledge_case(env.user("field1"), cid)
    assert "dispatch" in info.value.allowed
    again = await s.dispatch_case(env.user("commander"), cid, env.team("second")["id"])
    assert again["status"] == "dispatched" and [t["team_id"] for t in again["tasks"]] == [
        env.team("patrol")["id"], env.team("second")["id"]
    ]
    # the new team gets the whole limit from the re-dispatch
    assert again["clock"]["started_at"] > case["clock"]["started_at"]
    with pytest.raises(Forbidden, match="another team"):
        await s.acknowledge_case(env.user("field1"), cid)
    await s.acknowledge_case(env.user("field2"), cid)
    assert _actions(await s.get_case(env.user("duty"), cid))[-4:] == ["dispatch", "return", "dispatch", "acknowledge"]
    assert await s.verify_timeline(cid)


async def test_extension_approved_moves_the_deadline(env: Env) -> None:
    env.clock.t = MONDAY_9
    s = env.service
    case = await _dispatched(env)
    cid, old_due = case["id"], case["deadline_at"]
    for call in (s.approve_extension(env.user("commander"), cid), s.refuse_extension(env.user("commander"), cid, "no")):
        with pytest.raises(TransitionRefused, match="no pending extension request"):
            await call
    with pytest.raises(Invalid) as info:
        await s.request_extension(env.user("field1"), cid, 0, "need more")
    assert info.value.field == "amount"
    asked = await s.request_extension(env.user("field1"), cid, 2, "waiting for the sanitation truck")
    assert asked["status"] == "dispatched"
    [ext] = asked["extensions"]
    assert ext["status"] == "pending" and ext["limit"] == {"type": "working_hours", "amount": 2.0}
    with pytest.raises(TransitionRefused, match="already has a pending extension"):
        await s.request_extension(env.user("field1"), cid, 1, "more")
    with pytest.raises(Forbidden):
        await s.approve_extension(env.user("duty"), cid)
    approved = await s.approve_extension(env.user("commander"), cid, note="granted")
    [ext] = approved["extensions"]
    assert ext["status"] == "approved" and ext["old_due_at"] == old_due
    # 14:30 + 2 working hours = 16:30, the task and the clock agree
    assert _local(approved["deadline_at"]).strftime("%H:%M") == "16:30"
    assert approved["tasks"][-1]["deadline_at"] == approved["deadline_at"] == ext["new_due_at"]
    assert approved["clock"]["due_at"] == approved["deadline_at"] and approved["clock"]["state"] == "running"


async def test_extension_refused_keeps_the_deadline(env: Env) -> None:
    s = env.service
    case = await _dispatched(env)
    cid = case["id"]
    await s.acknowledge_case(env.user("field1"), cid)
    await s.request_extension(env.user("field1"), cid, 1, "rain", limit_type="working_days")
    refused = await s.refuse_extension(env.user("commander"), cid, "it is a quick job")
    assert refused["extensions"][0]["status"] == "refused" and refused["deadline_at"] == case["deadline_at"]
    assert refused["status"] == "handling"
    # a new request after a decision is allowed; reporting withdraws it
    await s.request_extension(env.user("field1"), cid, 1, "still raining")
    handled = await s.report_handled(env.user("field1"), cid, "done anyway")
    assert [e["status"] for e in handled["extensions"]] == ["refused", "withdrawn"]
    with pytest.raises(TransitionRefused, match="handled"):
        await s.approve_extension(env.user("commander"), cid)
    assert _actions(handled)[-5:] == ["acknowledge", "request_extension", "refuse_extension", "request_extension", "report"]


async def test_suspension_stops_the_clock_and_resume_returns_to_where_it_was(env: Env) -> None:
    env.clock.t = MONDAY_9
    s = env.service
    case = await _dispatched(env, category="roadside_parking")  # 2 urgent hours: round the clock
    cid = case["id"]
    await s.acknowledge_case(env.user("field1"), cid)
    env.clock.t = MONDAY_9 + 1800  # half an hour used
    with pytest.raises(Forbidden):
        await s.suspend_case(env.user("field1"), cid, "no")
    with pytest.raises(Invalid):
        await s.suspend_case(env.user("commander"), cid, "")
    suspended = await s.suspend_case(env.user("commander"), cid, "the owner is abroad; wait for the court")
    assert suspended["status"] == "suspended" and suspended["suspended_from"] == "handling"
    assert suspended["clock"]["paused"] and suspended["clock"]["remaining"] == pytest.approx(1.5, abs=1e-3)
    for call in (
        s.report_handled(env.user("field1"), cid, "x"),
        s.progress_case(env.user("field1"), cid, "x"),
        s.suspend_case(env.user("commander"), cid, "again"),
    ):
        with pytest.raises(TransitionRefused, match="suspended") as info:
            await call
        assert info.value.allowed == ("resume",)
    env.clock.t = MONDAY_9 + 5 * 86400  # five days later
    resumed = await s.resume_case(env.user("commander"), cid, note="court decided")
    assert resumed["status"] == "handling" and resumed["suspended_from"] is None
    assert not resumed["clock"]["paused"]
    # what was left (1.5 h) counts from the resumption
    resumed_at = resumed["timeline"][-1]["at"]
    assert resumed["deadline_at"] == pytest.approx(resumed_at + 1.5 * 3600, abs=1)
    assert resumed["tasks"][-1]["deadline_at"] == resumed["deadline_at"]
    await s.report_handled(env.user("field1"), cid, "towed")
    assert _actions(await s.get_case(env.user("duty"), cid))[-3:] == ["suspend", "resume", "report"]
    # a filed case can be suspended too, and comes back filed
    other = await _reported(env)
    await s.file_case(env.user("duty"), other["id"])
    await s.suspend_case(env.user("commander"), other["id"], "road works first")
    assert (await s.resume_case(env.user("commander"), other["id"]))["status"] == "filed"


async def test_reject_resumes_the_handling_clock(env: Env) -> None:
    env.clock.t = MONDAY_9
    s = env.service
    case = await _dispatched(env, category="roadside_parking")
    cid = case["id"]
    await s.acknowledge_case(env.user("field1"), cid)
    env.clock.t = MONDAY_9 + 3600
    await s.report_handled(env.user("field1"), cid, "moved")
    env.clock.t = MONDAY_9 + 3 * 3600  # verification took two hours: not the team's time
    back = await s.reject_case(env.user("duty"), cid, "still there")
    assert back["status"] == "handling" and not back["clock"]["paused"]
    assert back["deadline_at"] == pytest.approx(back["timeline"][-1]["at"] + 3600, abs=1)


async def test_refused_transitions_say_where_the_case_is_and_what_is_allowed(env: Env) -> None:
    s = env.service
    case = await _reported(env)
    cid = case["id"]
    cases = [
        (s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"]), "reported", ("file", "refuse")),
        (s.suspend_case(env.user("commander"), cid, "x"), "reported", ("file", "refuse")),
        (s.evaluate_case(env.user("duty"), cid, 3), "reported", ("file", "refuse")),
    ]
    for call, current, allowed in cases:
        with pytest.raises(TransitionRefused) as info:
            await call
        assert info.value.current == current and info.value.allowed == allowed
        assert f"a case that is {current}" in str(info.value)
        assert "allowed actions are: " + ", ".join(allowed) in str(info.value)
    await s.file_case(env.user("duty"), cid)
    for call in (s.return_case(env.user("field1"), cid, "x"), s.resume_case(env.user("commander"), cid)):
        with pytest.raises((TransitionRefused, NotFound)):
            await call
    got = await s.get_case(env.user("duty"), cid)
    assert got["status"] == "filed" and _actions(got) == ["intake", "file"]


async def test_two_people_filing_and_refusing_at_once(env: Env) -> None:
    """One wins, the other gets 409 (Conflict or TransitionRefused) naming the current status; the
    timeline has exactly one of the two entries."""
    s = env.service
    other = env.new_service(create_engine(env.url))
    try:
        for _ in range(3):
            case = await _reported(env)
            cid = case["id"]
            results = await asyncio.gather(
                s.file_case(env.user("duty"), cid),
                other.refuse_case(env.user("commander"), cid, "not for us"),
                return_exceptions=True,
            )
            wins = [r for r in results if isinstance(r, dict)]
            losses = [r for r in results if isinstance(r, Conflict | TransitionRefused)]
            assert len(wins) == 1 and len(losses) == 1, results
            final = await s.get_case(env.user("duty"), cid)
            assert final["status"] == wins[0]["status"] in ("filed", "refused")
            assert final["status"] in str(losses[0])
            assert len(final["timeline"]) == 2 and await s.verify_timeline(cid)
        # the centre deciding an extension twice at once: exactly one decision
        case = await _dispatched(env)
        await s.request_extension(env.user("field1"), case["id"], 1, "rain")
        results = await asyncio.gather(
            s.approve_extension(env.user("commander"), case["id"]),
            other.refuse_extension(env.user("commander"), case["id"], "no"),
            return_exceptions=True,
        )
        assert len([r for r in results if isinstance(r, dict)]) == 1, results
        final = await s.get_case(env.user("duty"), case["id"])
        assert [e["status"] for e in final["extensions"]] in (["approved"], ["refused"])
        assert _actions(final)[-1] in ("approve_extension", "refuse_extension")
        assert _actions(final)[-2] == "request_extension"
    finally:
        await other.engine.dispose()


async def test_a_calendar_override_set_by_another_hub_process_counts_at_the_next_dispatch(env: Env) -> None:
    """Deadlines follow the overrides in the database at the moment of each action, even when a
    second hub process (here a second service on the same database) changed them in between."""
    other = env.new_service(env.engine)
    admin = env.user("admin")
    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.fromtimestamp(env.clock.t, tz).date()
    # within today's working hours, whatever the hour the test runs: after them, making today a
    # working day would add no time and the deadline could not move
    env.clock.t = datetime.combine(today, time(10, 0), tzinfo=tz).timestamp()
    week = [date.fromordinal(today.toordinal() + d) for d in range(10)]

    async def deadline() -> float:
        case = await _dispatched(env, category="damaged_road")  # handled within 5 working days
        return float(case["deadline_at"])

    plain = await deadline()
    for day in week:  # ten days off, entered on the other process
        await other.set_calendar_override(admin, day, "holiday", "flood recovery")
    pushed = await deadline()
    assert pushed - plain >= 5 * 86400  # none of those days counts any more
    await other.set_calendar_override(admin, week[0], "workday", "all hands")  # replaced, same count
    assert await deadline() < pushed
    for day in week:
        await other.delete_calendar_override(admin, day)
    assert abs(await deadline() - plain) < 3600  # as before (the clock moved on a little)
