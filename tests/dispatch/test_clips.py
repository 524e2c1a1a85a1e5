"""Flag clips on record: attached to the flag and its case, marked missing (never deleted) with a reason."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from fusionhub.dispatch.clips import FlagNotStored
from fusionhub.dispatch.errors import Invalid, NotFound
from fusionhub.signaling.messages import ClipMissing, ClipReady, Topic
from tests.dispatch.conftest import Env


def clip_msg(env: Env, flag_id: str, camera_id: int, data: bytes = b"\x00\x00\x00\x18ftypisom-fake") -> ClipReady:
    rel = f"clips/{uuid.uuid4().hex}.mp4"
    path = env.data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    now = env.clock.t
    return ClipReady(
        flag_id=flag_id, camera_id=camera_id, path=rel, start=now - 15, end=now + 5,
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), has_audio=False,
    )


async def test_a_clip_before_review_goes_to_the_flag_then_to_the_case(env: Env) -> None:
    cam, zone = await env.camera()
    flag = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    assert flag["clip_url"] is None and flag["clip_state"] is None
    msg = clip_msg(env, flag["id"], cam["id"])
    stored = await env.service.record_clip(msg)
    assert stored["clip_url"] == f"/api/v1/flags/{flag['id']}/clip.mp4" and stored["clip_state"] == "ready"
    assert stored["clip_start"] == pytest.approx(msg.start, abs=1e-3)
    assert await env.service.record_clip(msg) == stored  # redelivered: no change
    assert env.topics().count(Topic.FLAG_CLIP) == 1
    duty = env.user("duty")
    path = await env.service.flag_clip_path(duty, flag["id"])
    assert path == (env.data_dir / msg.path).resolve()
    with pytest.raises(NotFound):
        await env.service.flag_clip_path(env.user("outsider"), flag["id"])  # another region
    _, case = await env.service.confirm_flag(duty, flag["id"])
    clips = [a for a in case["attachments"] if a["kind"] == "clip"]
    assert len(clips) == 1 and clips[0]["content_type"] == "video/mp4"
    file, ctype = await env.service.attachment_path(duty, case["id"], clips[0]["id"])
    assert ctype == "video/mp4" and file.read_bytes() == (env.data_dir / msg.path).read_bytes()


async def test_a_clip_after_review_joins_the_case(env: Env) -> None:
    flag, case = await env.filed_case()
    assert not [a for a in case["attachments"] if a["kind"] == "clip"]
    await env.service.record_clip(clip_msg(env, flag["id"], flag["camera_id"]))
    case = await env.service.get_case(env.user("duty"), case["id"])
    assert [a["kind"] for a in case["attachments"]].count("clip") == 1


async def test_missing_clips_keep_their_records_with_a_reason(env: Env) -> None:
    flag, case = await env.filed_case()
    msg = clip_msg(env, flag["id"], flag["camera_id"])
    await env.service.record_clip(msg)
    (env.data_dir / msg.path).unlink()  # retention deleted the file
    changed = await env.service.mark_clip_missing(ClipMissing(path=msg.path, reason="retention"))
    assert [f["id"] for f in changed] == [flag["id"]]
    assert changed[0]["clip_state"] == "missing" and changed[0]["clip_reason"] == "retention"
    assert changed[0]["clip_url"] is None
    assert await env.count("flags") == 1 and await env.count("attachments", "kind = 'clip'") == 1
    with pytest.raises(NotFound) as info:
        await env.service.flag_clip_path(env.user("duty"), flag["id"])
    assert "retention" in str(info.value)
    # a clip that was never written: the flag says why
    cam, zone = await env.camera(name="Gate 4")
    other = await env.service.record_flag(env.flag_msg(cam["id"], zone["id"]))
    [out] = await env.service.mark_clip_missing(ClipMissing(flag_id=other["id"], reason="disk_full"))
    assert out["clip_state"] == "missing" and out["clip_reason"] == "disk_full"


async def test_bad_clip_events(env: Env) -> None:
    cam, _ = await env.camera()
    with pytest.raises(FlagNotStored):  # arrived before its flag: the consumer retries
        await env.service.record_clip(clip_msg(env, str(uuid.uuid4()), cam["id"]))
    bad = clip_msg(env, str(uuid.uuid4()), cam["id"]).model_copy(update={"path": "../secret.mp4"})
    with pytest.raises(Invalid):
        await env.service.record_clip(bad)
    with pytest.raises(Invalid):
        await env.service.mark_clip_missing(ClipMissing(reason="retention"))
