"""No alert storms and learning from review: flags of a zone whose case is open attach to it,
per-rule precision from reviews, reviewed samples for training; zone rule settings on record.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from fusionhub.dispatch.errors import Forbidden, Invalid, NotFound
from fusionhub.signaling.messages import FlagRaised, Topic
from tests.dispatch.conftest import Env


def with_frame(env: Env, msg: FlagRaised) -> FlagRaised:
    rel = f"evidence/{msg.flag_id}-frame.jpg"
    (env.data_dir / rel).write_bytes((env.data_dir / msg.evidence_path).read_bytes())
    return msg.model_copy(update={"frame_path": rel})


async def timeline(env: Env, case_id: int) -> list[dict[str, Any]]:
    return list((await env.service.get_case(env.user("duty"), case_id))["timeline"])


async def test_flag_of_a_zone_with_an_open_case_attaches_to_it(env: Env) -> None:
    flag, case = await env.filed_case()
    env.published.clear()
    again = await env.service.record_flag(env.flag_msg(case["camera_id"], case["zone_id"]))
    assert again["status"] == "attached" and again["case_id"] == case["id"]
    assert await env.service.list_flags(env.user("duty"), "pending") == []
    assert [f["id"] for f in await env.service.list_flags(env.user("duty"), "attached")] == [again["id"]]
    assert env.topics() == [Topic.CASE_CHANGED]  # the case board updates; the review queue does not
    entries = await timeline(env, case["id"])
    last = entries[-1]
    assert last["action"] == "still_present" and last["actor"] is None
    assert last["from_status"] == last["to_status"] == case["status"]
    assert last["data"]["flag_id"] == again["id"] and last["data"]["label"] == "car"
    assert await env.service.verify_timeline(case["id"])  # the hash chain holds
    # redelivery of the same event changes nothing
    assert await env.service.record_flag(env.flag_msg(case["camera_id"], case["zone_id"]).model_copy(
        update={"flag_id": again["id"]})) == again
    assert len(await timeline(env, case["id"])) == len(entries)


async def test_still_present_at_most_once_per_interval(env: Env) -> None:
    flag, case = await env.filed_case()
    for _ in range(3):
        await env.service.record_flag(env.flag_msg(case["camera_id"], case["zone_id"]))
    assert [e["action"] for e in await timeline(env, case["id"])].count("still_present") == 1
    assert await env.count("flags", "status = 'attached'") == 3
    env.clock.t += env.service.still_present_every_s + 1
    await env.service.record_flag(env.flag_msg(case["camera_id"], case["zone_id"]))
    assert [e["action"] for e in await timeline(env, case["id"])].count("still_present") == 2


async def test_other_zones_and_finished_cases_raise_new_flags(env: Env) -> None:
    flag, case = await env.filed_case()
    admin = env.user("admin")
    other_zone = await env.service.add_zone(admin, case["camera_id"], "far lane", "road", [[0, 0], [1, 0], [1, 0.4]], 30, None)
    elsewhere = await env.service.record_flag(env.flag_msg(case["camera_id"], other_zone["id"]))
    assert elsewhere["status"] == "pending"
    s = env.service
    await s.dispatch_case(env.user("commander"), case["id"], env.team("patrol")["id"])
    await s.acknowledge_case(env.user("field1"), case["id"])
    await s.report_handled(env.user("field1"), case["id"], "car towed")
    # handled but not yet verified: still open, the car seen again says so on the case
    seen = await s.record_flag(env.flag_msg(case["camera_id"], case["zone_id"]))
    assert seen["status"] == "attached"
    await s.verify_case(env.user("duty"), case["id"])
    fresh = await s.record_flag(env.flag_msg(case["camera_id"], case["zone_id"]))
    assert fresh["status"] == "pending" and fresh["case_id"] is None  # closed: a new occupation, a new flag


async def test_precision_per_rule_from_reviews(env: Env) -> None:
    cam, zone = await env.camera()
    duty = env.user("duty")
    s = env.service
    ids = [(await s.record_flag(env.flag_msg(cam["id"], zone["id"])))["id"] for _ in range(4)]
    await s.dismiss_flag(duty, ids[0], "delivery van loading")
    await s.dismiss_flag(duty, ids[1], "not a vehicle: a shadow")
    await s.confirm_flag(duty, ids[2])
    await s.record_flag(env.flag_msg(cam["id"], zone["id"]))  # attaches to the case just filed
    stall = env.flag_msg(cam["id"], zone["id"]).model_copy(update={"rule": "street_stall"})
    cam2, zone2 = await env.camera(name="Market")
    await s.record_flag(stall.model_copy(update={"camera_id": cam2["id"], "zone_id": zone2["id"]}))
    rows = {r["rule"]: r for r in await s.rule_precision(duty)}
    road = rows["occupied_road"]
    assert (road["confirmed"], road["dismissed"], road["pending"], road["attached"]) == (1, 2, 1, 1)
    assert road["precision"] == pytest.approx(1 / 3) and road["reviewed"] == 3
    assert rows["street_stall"]["precision"] is None  # nothing reviewed yet
    only_cam2 = await s.rule_precision(duty, camera_id=cam2["id"])
    assert [r["rule"] for r in only_cam2] == ["street_stall"]
    assert await s.rule_precision(duty, since=env.clock.t + 3600) == []
    assert await s.rule_precision(env.user("outsider")) == []  # another region sees nothing of it
    with pytest.raises(Forbidden):
        await s.rule_precision(env.user("field1"))


async def test_review_samples_are_reviewed_flags_with_frames(env: Env) -> None:
    cam, zone = await env.camera()
    duty, s = env.user("duty"), env.service
    kept = await s.record_flag(with_frame(env, env.flag_msg(cam["id"], zone["id"])))
    dropped = await s.record_flag(with_frame(env, env.flag_msg(cam["id"], zone["id"])))
    await s.record_flag(with_frame(env, env.flag_msg(cam["id"], zone["id"])))  # never reviewed
    no_frame = await s.record_flag(env.flag_msg(cam["id"], zone["id"]))
    await s.dismiss_flag(duty, dropped["id"], "ambulance")
    await s.dismiss_flag(duty, no_frame["id"], "old flag without a frame")
    await s.confirm_flag(duty, kept["id"])
    samples = await s.review_samples()
    assert {x["id"]: x["status"] for x in samples} == {kept["id"]: "confirmed", dropped["id"]: "dismissed"}
    sample = next(x for x in samples if x["id"] == kept["id"])
    assert sample["frame_path"].endswith("-frame.jpg") and sample["boxes"][0]["label"] == "car"
    assert await s.review_samples(camera_id=cam["id"] + 99) == []
    with pytest.raises(Invalid):
        await s.record_flag(env.flag_msg(cam["id"], zone["id"]).model_copy(update={"frame_path": "../x.jpg"}))


async def test_zone_rule_settings_are_checked_and_kept(env: Env) -> None:
    cam, _ = await env.camera()
    admin, s = env.user("admin"), env.service
    poly = [[0, 0], [1, 0], [1, 1]]
    zone = await s.add_zone(
        admin, cam["id"], "no parking by day", "road", poly, 120, None,
        windows=["07:00-19:00", "22:30-02:00"], min_count=2, realert_s=1800,
    )
    assert (zone["rule"], zone["windows"], zone["min_count"], zone["realert_s"]) == (
        "occupied_road", ["07:00-19:00", "22:30-02:00"], 2, 1800.0)
    stall = await s.add_zone(admin, cam["id"], "pavement", "road", poly, 300, None, rule="street_stall")
    assert stall["rule"] == "street_stall" and stall["min_count"] == 1 and stall["windows"] == []
    bin_zone = await s.add_zone(admin, cam["id"], "bin 4", "bin", poly, 600, None, threshold=0.4)
    assert (bin_zone["rule"], bin_zone["threshold"], bin_zone["reference_url"]) == ("overflowing_bin", 0.4, None)
    for kind, rules, field in [
        ("road", {"rule": "overflowing_bin"}, "rule"),
        ("bin", {"rule": "street_stall"}, "rule"),
        ("road", {"threshold": 0.5}, "threshold"),
        ("road", {"windows": ["7-19"]}, "windows"),
        ("road", {"windows": ["07:00-07:00"]}, "windows"),
        ("road", {"min_count": 0}, "min_count"),
        ("road", {"realert_s": 5}, "realert_s"),
        ("lake", {}, "kind"),
    ]:
        with pytest.raises(Invalid) as err:
            await s.add_zone(admin, cam["id"], "bad", kind, poly, 60, None, **rules)
        assert err.value.field == field
    changed = await s.update_zone(admin, cam["id"], zone["id"], windows=None, min_count=1, name="all day")
    assert (changed["windows"], changed["min_count"], changed["name"], changed["realert_s"]) == ([], 1, "all day", 1800.0)
    with pytest.raises(Invalid):
        await s.update_zone(admin, cam["id"], zone["id"], kind="bin")
    with pytest.raises(Forbidden):
        await s.update_zone(env.user("duty"), cam["id"], zone["id"], name="x")


async def test_bin_reference_on_record(env: Env) -> None:
    cam, road = await env.camera()
    admin, s = env.user("admin"), env.service
    bin_zone = await s.add_zone(admin, cam["id"], "bin 4", "bin", [[0, 0], [1, 0], [1, 1]], 600, None)
    (env.data_dir / "references").mkdir()
    (env.data_dir / "references" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    zone, old = await s.set_zone_reference(admin, cam["id"], bin_zone["id"], "references/a.png", env.service.now())
    assert old is None and zone["reference_url"].endswith(f"/zones/{bin_zone['id']}/reference.png")
    assert zone["reference_at"] is not None
    assert (await s.zone_reference_file(env.user("duty"), cam["id"], bin_zone["id"])).name == "a.png"
    _, old = await s.set_zone_reference(admin, cam["id"], bin_zone["id"], "references/b.png", env.service.now())
    assert old == "references/a.png"
    with pytest.raises(Invalid):
        await s.set_zone_reference(admin, cam["id"], road["id"], "references/c.png", env.service.now())
    with pytest.raises(NotFound):
        await s.zone_reference_file(env.user("outsider"), cam["id"], bin_zone["id"])
    # a new polygon no longer matches the picture: the reference is dropped
    moved = await s.update_zone(admin, cam["id"], bin_zone["id"], polygon=[[0, 0], [0.5, 0], [0.5, 0.5]])
    assert moved["reference_url"] is None
