"""Cameras and zones (credentials kept inside), users and teams, the demo seed."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import text

from fusionhub.dispatch.demo import DEMO_TEAM, seed_demo
from fusionhub.dispatch.errors import Duplicate, Forbidden, Invalid, NotFound
from tests.dispatch.conftest import PASSWORD, Env

SECRET_URL = "rtsp://operator:s3cr3t@127.0.0.1:9/stream1"


async def test_camera_credentials_stay_inside(env: Env) -> None:
    s, admin = env.service, env.user("admin")
    cam = await s.create_camera(admin, "Gate 3", SECRET_URL, "city")
    assert cam["url"] == "rtsp://127.0.0.1:9/stream1" and cam["has_credentials"] is True
    assert "s3cr3t" not in str(cam) and "s3cr3t" not in str(await s.list_cameras(env.user("duty")))
    assert "status" not in cam and cam["zones"] == [] and cam["enabled"] is True
    assert await s.camera_source_url(cam["id"]) == SECRET_URL
    [internal] = await s.all_cameras_internal()
    assert internal["url"] == SECRET_URL and internal["region"] == "city"
    plain = await s.create_camera(admin, "Gate 4", "rtsp://127.0.0.1:9/x", "city")
    assert plain["has_credentials"] is False
    with pytest.raises(NotFound):
        await s.camera_source_url(999_999)


async def test_a_substream_is_kept_inside_like_the_main_url_and_never_equals_it(env: Env) -> None:
    s, admin = env.service, env.user("admin")
    sub = "rtsp://operator:s3cr3t@127.0.0.1:9/stream2"
    cam = await s.create_camera(admin, "Gate 5", SECRET_URL, "city", substream_url=sub)
    assert cam["substream_url"] == "rtsp://127.0.0.1:9/stream2" and cam["substream_has_credentials"] is True
    assert "s3cr3t" not in str(cam) and "s3cr3t" not in str(await s.list_cameras(env.user("duty")))
    [internal] = await s.all_cameras_internal()
    assert internal["substream_url"] == sub
    # a main URL changed to the substream's would pull one stream twice: refused, nothing changed
    with pytest.raises(Invalid) as refused:
        await s.update_camera(admin, cam["id"], url=sub)
    assert refused.value.field == "substream_url"
    with pytest.raises(Invalid):
        await s.create_camera(admin, "Gate 6", SECRET_URL, "city", substream_url=SECRET_URL)
    assert [c["name"] for c in await s.list_cameras(admin)] == ["Gate 5"]
    assert (await s.get_camera(admin, cam["id"]))["url"] == "rtsp://127.0.0.1:9/stream1"
    cam = await s.update_camera(admin, cam["id"], substream_url=None)  # analytics decodes the main stream
    assert cam["substream_url"] is None and cam["substream_has_credentials"] is False
    [internal] = await s.all_cameras_internal()
    assert internal["substream_url"] is None


async def test_camera_roles_and_regions(env: Env) -> None:
    s = env.service
    with pytest.raises(Forbidden):
        await s.create_camera(env.user("duty"), "x", SECRET_URL, "city")
    with pytest.raises(Forbidden):  # the city admin cannot put a camera in another region
        await s.create_camera(env.user("admin"), "x", SECRET_URL, "elsewhere")
    cam, _ = await env.camera()
    with pytest.raises(Forbidden):
        await s.list_cameras(env.user("field1"))
    assert await s.list_cameras(env.user("outsider")) == [] and await s.list_cameras(env.user("cityx")) == []
    with pytest.raises(NotFound):
        await s.get_camera(env.user("outsider"), cam["id"])
    assert (await s.get_camera(env.user("commander"), cam["id"]))["name"] == "Gate 3"


async def test_update_and_delete_camera(env: Env) -> None:
    s, admin = env.service, env.user("admin")
    cam, zone = await env.camera()
    flag = await s.record_flag(env.flag_msg(cam["id"], zone["id"]))
    out = await s.update_camera(admin, cam["id"], name="Gate 3 north", enabled=False, region="city.west")
    assert (out["name"], out["enabled"], out["region"]) == ("Gate 3 north", False, "city.west")
    assert len(out["zones"]) == 1
    with pytest.raises(Invalid):
        await s.update_camera(admin, cam["id"], colour="red")
    with pytest.raises(Forbidden):
        await s.update_camera(admin, cam["id"], region="elsewhere")
    await s.delete_camera(admin, cam["id"])
    with pytest.raises(NotFound):
        await s.get_camera(admin, cam["id"])
    assert await env.count("zones") == 0
    # the flag stays reviewable, with the names it was raised with
    kept = await s.get_flag(env.user("duty"), flag["id"])
    assert kept["camera_id"] is None and kept["camera_name"] == "Gate 3" and kept["zone_name"] == "lane"
    with pytest.raises(NotFound):
        await s.delete_camera(admin, cam["id"])


@pytest.mark.parametrize(
    ("polygon", "dwell", "field"),
    [
        ([[0, 0], [1, 1]], 30, "polygon"),
        ([], 30, "polygon"),
        ([[0, 0], [1, 0], [1, 1.5]], 30, "polygon"),
        ([[-0.1, 0], [1, 0], [1, 1]], 30, "polygon"),
        ([[0, 0], [1, 0], [1]], 30, "polygon"),
        ([[0, 0], [1, 0], ["a", 1]], 30, "polygon"),
        ([[0, 0], [1, 0], [float("nan"), 1]], 30, "polygon"),
        ([[0, 0], [1, 0], [1, 1]], 0, "dwell_s"),
        ([[0, 0], [1, 0], [1, 1]], 86401, "dwell_s"),
    ],
)
async def test_zone_validation(env: Env, polygon: list[list[float]], dwell: float, field: str) -> None:
    cam, _ = await env.camera()
    with pytest.raises(Invalid) as info:
        await env.service.add_zone(env.user("admin"), cam["id"], "bad", "road", polygon, dwell, None)
    assert info.value.field == field and info.value.code == "invalid_input"
    assert len((await env.service.get_camera(env.user("admin"), cam["id"]))["zones"]) == 1


async def test_zones_add_and_delete(env: Env) -> None:
    s, admin = env.service, env.user("admin")
    cam, zone = await env.camera()
    assert zone["polygon"] == [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
    assert (zone["dwell_s"], zone["classes"], zone["kind"]) == (30.0, ["car"], "road")
    with pytest.raises(Invalid):
        await s.add_zone(admin, cam["id"], "x", "river", [[0, 0], [1, 0], [1, 1]], 5, None)
    with pytest.raises(Forbidden):
        await s.add_zone(env.user("duty"), cam["id"], "x", "road", [[0, 0], [1, 0], [1, 1]], 5, None)
    other, _ = await env.camera(name="Gate 4")
    with pytest.raises(NotFound):  # the zone belongs to another camera
        await s.delete_zone(admin, other["id"], zone["id"])
    await s.delete_zone(admin, cam["id"], zone["id"])
    assert (await s.get_camera(admin, cam["id"]))["zones"] == []


async def test_users_and_login(env: Env) -> None:
    s = env.service
    newbie = f"newbie-{uuid.uuid4().hex[:8]}"  # users persist in the session's PostgreSQL database
    user = await s.create_user(newbie, "a long password", "field", "city", "New Bie", env.team("second")["id"])
    assert set(user) == {"id", "username", "display_name", "role", "region", "team_id"}
    assert await s.authenticate(newbie, "a long password") == user
    assert await s.authenticate(newbie, "a long passworD") is None
    assert await s.authenticate("nobody", "a long password") is None
    assert await s.get_user(user["id"]) == user and await s.get_user(999_999) is None
    with pytest.raises(Duplicate):
        await s.create_user(newbie, "another one", "duty", "city", "Again")
    with pytest.raises(Invalid):
        await s.create_user("x", "pw", "superuser", "city", "X")
    with pytest.raises(Invalid):
        await s.create_user("y", "pw", "field", "city", "Y", team_id=999_999)
    names = [u["username"] for u in await s.list_users(env.user("admin"))]
    assert newbie in names and "outsider" not in names and "cityx" not in names and "west_duty" in names
    with pytest.raises(Forbidden):
        await s.list_users(env.user("commander"))
    async with env.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT password_hash FROM users WHERE username = :u"), {"u": newbie})).scalar_one()
    assert stored.startswith("scrypt$") and "a long password" not in stored


async def test_teams_are_listed_by_region_with_members(env: Env) -> None:
    teams = await env.service.list_teams(env.user("commander"))
    assert [t["name"] for t in teams] == ["Patrol team 1", "Patrol team 2"]
    assert [m["username"] for m in teams[0]["members"]] == ["field1"]
    assert [t["name"] for t in await env.service.list_teams(env.user("outsider"))] == ["Far team"]


async def test_seed_demo_is_idempotent(env: Env) -> None:
    passwords = {"admin": "pw-admin-1", "commander": "pw-cmd-1", "duty": "pw-duty-1", "field1": "pw-field-1"}
    # field1 exists already in the fixture world; the demo seed gives it the demo password
    region = f"demo{uuid.uuid4().hex[:8]}"  # teams persist in the session's PostgreSQL database
    first = await seed_demo(env.service, passwords=passwords, region=region)
    again = await seed_demo(env.service, passwords=passwords, region=region)
    assert first["team"] == again["team"] and first["team"]["name"] == DEMO_TEAM
    viewer = {**env.user("admin"), "region": region}
    assert [t["name"] for t in await env.service.list_teams(viewer)] == [DEMO_TEAM]
    for name, pw in passwords.items():
        assert await env.service.authenticate(name, pw) is not None
    assert await env.service.authenticate("field1", PASSWORD) is None
    # put the fixture passwords back for the shared PostgreSQL database
    for name in passwords:
        await env.service.set_password(name, PASSWORD)
    with pytest.raises(ValueError):
        await seed_demo(env.service, passwords={"admin": "x"})


async def test_credentials_never_reach_the_log(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s, admin = env.service, env.user("admin")
    cam = await s.create_camera(admin, "Gate 9", SECRET_URL, "city")
    await s.update_camera(admin, cam["id"], url=SECRET_URL.replace("9/stream1", "9/stream2"))
    await s.camera_source_url(cam["id"])
    await s.all_cameras_internal()
    assert "s3cr3t" not in caplog.text
