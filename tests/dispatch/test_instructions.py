"""One-click tasking on a real database (SQLite and PostgreSQL): instructions to teams and named
people, acknowledging and reporting, escalation with an injected clock, exactly-once escalation
with two escalators, across a restart, and when the bus was down."""

from __future__ import annotations

import asyncio
from typing import Any

import cv2
import numpy as np
import pytest

from fusionhub.dispatch.db import create_engine
from fusionhub.dispatch.errors import Conflict, Forbidden, Invalid, NotFound
from fusionhub.dispatch.escalation import Escalator
from fusionhub.dispatch.outbox import relay_outbox
from fusionhub.signaling.messages import Topic
from tests.dispatch.conftest import PASSWORD, Env


def _jpeg() -> bytes:
    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 120, np.uint8))
    assert ok
    return jpeg.tobytes()


async def _user(env: Env, username: str, team: str | None = None) -> dict[str, Any]:
    """A further field user (kept between PostgreSQL tests, like the seeded ones)."""
    found = await env.service.get_user_by_username(username)
    if found is not None:
        return found
    team_id = env.team(team)["id"] if team else None
    return await env.service.create_user(username, PASSWORD, "field", "city", username.title(), team_id=team_id)


async def _loner(env: Env) -> dict[str, Any]:
    """A field user in no team: a recipient by name."""
    return await _user(env, "field3")


async def _send(env: Env, *, teams: tuple[str, ...] = ("patrol", "second"), users: tuple[int, ...] = (),
                minutes: int | None = 10, kind: str = "patrol") -> dict[str, Any]:
    return await env.service.create_instruction(
        env.user("commander"),
        kind=kind,
        text="Patrol the east market before 18:00",
        deadline_at=env.clock.t + 3600,
        team_ids=[env.team(t)["id"] for t in teams],
        user_ids=list(users),
        ack_within_min=minutes,
    )


def _publisher(env: Env) -> Any:
    """A bus stand-in that records what is published, like the service's own in the fixture."""

    async def publish(topic: Topic, data: dict[str, Any]) -> None:
        env.published.append((topic, data))

    return publish


def _by_target(instr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {(f"team:{r['team_id']}" if r["kind"] == "team" else f"user:{r['user_id']}"): r for r in instr["recipients"]}


async def test_two_teams_and_a_person_acknowledge_and_report(env: Env) -> None:
    s = env.service
    loner = await _loner(env)
    patrol, second = env.team("patrol")["id"], env.team("second")["id"]
    sent = await _send(env, users=(loner["id"],))
    assert sent["state"] == "open" and sent["counts"] == {
        "pending": 3, "escalated": 0, "acknowledged": 0, "reported": 0, "total": 3
    }
    assert sent["team_ids"] == sorted([patrol, second]) and sent["user_ids"] == [loner["id"]]
    assert env.topics() == [Topic.INSTRUCTION_CHANGED]
    assert sent["created_by_name"] == "Commander" and sent["ack_within_s"] == 600

    # each recipient sees it; the field page of a team member acknowledges for the team
    for who in (env.user("field1"), env.user("field2"), loner):
        assert [i["id"] for i in await s.list_instructions(who)] == [sent["id"]]
    acked = await s.acknowledge_instruction(env.user("field1"), sent["id"])
    rows = _by_target(acked)
    assert rows[f"team:{patrol}"]["status"] == "acknowledged"
    assert rows[f"team:{patrol}"]["acknowledged_by_name"] == "Field1"
    assert rows[f"team:{second}"]["status"] == "pending" and rows[f"user:{loner['id']}"]["status"] == "pending"

    # the same team cannot acknowledge twice: 409 naming who did
    with pytest.raises(Conflict, match="acknowledged by Field1"):
        await s.acknowledge_instruction(env.user("field1"), sent["id"])

    # a report straight away also acknowledges, with the note and the photo
    reported = await s.report_instruction(
        env.user("field2"), sent["id"], "market patrolled, two stalls moved", photo=_jpeg(), photo_type="image/jpeg"
    )
    row = _by_target(reported)[f"team:{second}"]
    assert row["status"] == "reported" and row["report_note"] == "market patrolled, two stalls moved"
    assert row["acknowledged_at"] == row["reported_at"] and row["acknowledged_by"] == env.user("field2")["id"]
    path, kind = await s.instruction_photo_path(env.user("commander"), sent["id"], row["id"])
    assert kind == "image/jpeg" and path.read_bytes() == _jpeg()

    await s.acknowledge_instruction(loner, sent["id"])
    await s.report_instruction(loner, sent["id"], "done")
    await s.report_instruction(env.user("field1"), sent["id"], "done too")
    final = await s.get_instruction(env.user("commander"), sent["id"])
    assert final["state"] == "done" and final["counts"]["reported"] == 3
    with pytest.raises(Conflict, match="reported"):
        await s.report_instruction(env.user("field1"), sent["id"], "again")
    assert await s.list_instructions(env.user("field1"), open_only=True) == []
    # every change went out live
    assert env.topics().count(Topic.INSTRUCTION_CHANGED) == 6


async def test_bad_instructions_are_refused_and_change_nothing(env: Env) -> None:
    s = env.service
    commander = env.user("commander")
    patrol = env.team("patrol")["id"]
    base: dict[str, Any] = {"kind": "patrol", "text": "go", "deadline_at": env.clock.t + 600, "team_ids": [patrol]}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"team_ids": []}, "recipients"),
        ({"kind": "party"}, "kind"),
        ({"text": "  "}, "text"),
        ({"deadline_at": env.clock.t - 10}, "deadline_at"),
        ({"deadline_at": env.clock.t + 40 * 86400}, "deadline_at"),
        ({"team_ids": [env.team("far")["id"]]}, "team_ids"),
        ({"team_ids": [999_999]}, "team_ids"),
        ({"team_ids": [], "user_ids": [env.user("duty")["id"]]}, "user_ids"),
        ({"ack_within_min": 0}, "ack_within_min"),
        ({"case_id": 999_999}, "case_id"),
    ]
    for change, field in bad:
        with pytest.raises(Invalid) as err:
            await s.create_instruction(commander, **{**base, **change})
        assert err.value.field == field, change
    with pytest.raises(Forbidden):
        await s.create_instruction(env.user("duty"), **base)
    assert await env.count("instructions") == 0 and await env.count("instruction_recipients") == 0
    assert env.published == []


async def test_who_sees_an_instruction(env: Env) -> None:
    s = env.service
    sent = await _send(env, teams=("patrol",))
    assert await s.list_instructions(env.user("field2")) == []
    with pytest.raises(NotFound):
        await s.get_instruction(env.user("field2"), sent["id"])
    with pytest.raises(NotFound):
        await s.acknowledge_instruction(env.user("field2"), sent["id"])
    with pytest.raises(NotFound):
        await s.get_instruction(env.user("outsider"), sent["id"])
    assert await s.list_instructions(env.user("outsider")) == []
    assert [i["id"] for i in await s.list_instructions(env.user("duty"))] == [sent["id"]]
    with pytest.raises(Forbidden):
        await s.acknowledge_instruction(env.user("duty"), sent["id"])


async def test_escalation_after_n_minutes_with_an_injected_clock(env: Env) -> None:
    s = env.service
    loner = await _loner(env)
    sent = await _send(env, users=(loner["id"],), minutes=10)
    await s.acknowledge_instruction(env.user("field1"), sent["id"])
    env.published.clear()

    env.clock.t += 9 * 60
    assert await s.escalate_due() == 0
    env.clock.t += 2 * 60
    assert await s.escalate_due() == 2  # the second team and the named person did not answer
    assert await s.escalate_due() == 0  # once only
    assert env.published == []  # the news waits in the outbox, written with the escalation
    assert await relay_outbox(s, _publisher(env)) == 3

    escalations = [d for t, d in env.published if t == Topic.INSTRUCTION_ESCALATED]
    assert sorted((e["recipient"]["kind"], e["region"]) for e in escalations) == [("team", "city"), ("user", "city")]
    assert all(e["created_by"] == env.user("commander")["id"] for e in escalations)
    changed = [d for t, d in env.published if t == Topic.INSTRUCTION_CHANGED]
    assert changed[-1]["counts"]["escalated"] == 2

    view = _by_target(await s.get_instruction(env.user("commander"), sent["id"]))
    assert view[f"team:{env.team('second')['id']}"]["status"] == "escalated"
    assert view[f"user:{loner['id']}"]["escalated_at"] is not None
    assert view[f"team:{env.team('patrol')['id']}"]["status"] == "acknowledged"
    # a late acknowledgement still counts, and the escalation stays on record
    late = _by_target(await s.acknowledge_instruction(loner, sent["id"]))[f"user:{loner['id']}"]
    assert late["status"] == "acknowledged" and late["escalated_at"] is not None


async def test_default_window_follows_the_kind(env: Env) -> None:
    emergency = await _send(env, minutes=None, kind="emergency")
    notice = await _send(env, minutes=None, kind="notice")
    assert (emergency["ack_within_s"], notice["ack_within_s"]) == (300, 3600)
    env.clock.t += 6 * 60
    assert await env.service.escalate_due() == 2  # the emergency's two teams, not the notice's


async def test_two_escalators_never_escalate_twice(env: Env) -> None:
    for _ in range(3):
        await _send(env, minutes=1)
    env.clock.t += 120
    other = env.new_service(create_engine(env.url))  # a second hub process on the same database
    try:
        done = await asyncio.gather(*(svc.escalate_due(limit=2) for svc in (env.service, other) for _ in range(4)))
        assert sum(done) == 6
        assert await env.count("instruction_recipients", "status = 'escalated'") == 6
        relayed = list(await asyncio.gather(*(relay_outbox(svc, _publisher(env), limit=3) for svc in (env.service, other))))
        while sum(relayed) < 9:
            relayed.append(await relay_outbox(other, _publisher(env)))
        assert await relay_outbox(env.service, _publisher(env)) == 0
    finally:
        await other.engine.dispose()
    escalated = [d["recipient"]["id"] for t, d in env.published if t == Topic.INSTRUCTION_ESCALATED]
    assert len(escalated) == 6 and len(set(escalated)) == 6


async def test_escalation_survives_a_dead_bus_and_a_restart(env: Env) -> None:
    await _send(env, minutes=1)
    env.clock.t += 61
    env.published.clear()

    async def bus_down(topic: Topic, data: dict[str, Any]) -> None:
        raise ConnectionError("bus unreachable")

    first = Escalator(env.service, bus_down, interval_s=60)
    await first.run_once()  # escalated and committed; publishing failed
    await first.stop()
    await first.stop()
    assert await env.count("instruction_recipients", "status = 'escalated'") == 2
    assert await env.count("outbox") == 3 and env.published == []

    # a new hub process (fresh engine and service) picks the messages up, sends them once
    engine = create_engine(env.url)
    try:
        restarted = env.new_service(engine)
        second = Escalator(restarted, _publisher(env), interval_s=0.05)
        second.start()
        for _ in range(200):
            if await env.count("outbox") == 0:
                break
            await asyncio.sleep(0.02)
        await second.stop()
        await second.stop()
    finally:
        await engine.dispose()
    assert await env.count("outbox") == 0
    assert env.topics().count(Topic.INSTRUCTION_ESCALATED) == 2
    assert await env.service.escalate_due() == 0


async def test_cancelled_instruction_neither_escalates_nor_takes_answers(env: Env) -> None:
    s = env.service
    sent = await _send(env, minutes=1)
    cancelled = await s.cancel_instruction(env.user("commander"), sent["id"])
    assert cancelled["state"] == "cancelled" and cancelled["cancelled_at"] is not None
    env.clock.t += 600
    assert await s.escalate_due() == 0
    with pytest.raises(Conflict, match="cancelled"):
        await s.acknowledge_instruction(env.user("field1"), sent["id"])
    with pytest.raises(Conflict):
        await s.cancel_instruction(env.user("commander"), sent["id"])


async def test_two_members_of_a_team_acknowledge_at_once(env: Env) -> None:
    s = env.service
    mate = await _user(env, "field1b", "patrol")
    sent = await _send(env, teams=("patrol",))
    results = await asyncio.gather(
        s.acknowledge_instruction(env.user("field1"), sent["id"]),
        s.acknowledge_instruction(mate, sent["id"]),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"]
    assert await env.count("instruction_recipients", "status = 'acknowledged'") == 1
