"""Zone rules, bin references, attachment to open cases and per-rule precision over HTTP, on a real hub
(SQLite, in-process bus, real analytics hub with a real worker)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from fusionhub.console.keys import ANALYTICS, CONFIG
from tests.analytics.scenes import asset
from tests.console.hubrunner import RunningHub, hub_config, open_ws, raise_flag, running_hub

pytestmark = pytest.mark.slow

LANE = [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]
BIN = [[0.45, 0.8], [0.8, 0.8], [0.8, 0.98], [0.45, 0.98]]


@pytest.fixture(scope="module")
def bus_frame() -> np.ndarray:
    return cv2.resize(asset("bus.jpg"), (405, 540), interpolation=cv2.INTER_AREA)


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        for name in ("admin", "commander", "duty", "field1", "outsider"):
            await running.login(name)
        yield running


async def camera(hub: RunningHub) -> int:
    status, cam = await hub.call(
        "POST", "/api/v1/cameras", "admin", json={"name": "Stop 7", "url": "rtsp://127.0.0.1:9/s", "region": "city"}
    )
    assert status == 201, cam
    return int(cam["id"])


async def zone(hub: RunningHub, camera_id: int, **body: Any) -> tuple[int, Any]:
    return await hub.call("POST", f"/api/v1/cameras/{camera_id}/zones", "admin", json={"name": "z", "polygon": LANE, **body})


async def test_zone_rules_over_http(hub: RunningHub) -> None:
    cam = await camera(hub)
    status, road = await zone(hub, cam, windows=["07:00-19:00"], min_count=2, realert_s=3600, dwell_s=120)
    assert status == 201, road
    assert (road["kind"], road["rule"], road["windows"], road["min_count"], road["realert_s"]) == (
        "road", "occupied_road", ["07:00-19:00"], 2, 3600.0)
    status, stall = await zone(hub, cam, rule="street_stall", classes=["umbrella", "dining table"])
    assert status == 201 and stall["rule"] == "street_stall"
    for body in (
        {"windows": ["7 to 19"]},
        {"windows": ["07:00-07:00"]},
        {"kind": "bin", "rule": "occupied_road"},
        {"rule": "overflowing_bin"},
        {"threshold": 0.3},  # road zones have none
        {"kind": "lake"},
        {"min_count": 0},
        {"classes": ["unicorn"]},  # not a class of the configured model
    ):
        status, err = await zone(hub, cam, **body)
        assert status == 422, (body, err)
        assert err["error"]["code"] == "invalid_input"
    status, changed = await hub.call(
        "PATCH", f"/api/v1/cameras/{cam}/zones/{road['id']}", "admin", json={"windows": [], "dwell_s": 60}
    )
    assert status == 200 and changed["windows"] == [] and changed["dwell_s"] == 60 and changed["min_count"] == 2
    assert (await hub.call("PATCH", f"/api/v1/cameras/{cam}/zones/{road['id']}", "duty", json={"dwell_s": 9}))[0] == 403
    assert (await hub.call("PATCH", f"/api/v1/cameras/{cam}/zones/{road['id']}", "admin", json={"dwell_s": None}))[0] == 422
    assert (await hub.call("GET", f"/api/v1/cameras/{cam}/zones/{road['id']}", "outsider"))[0] == 404
    status, got = await hub.call("GET", f"/api/v1/cameras/{cam}/zones/{road['id']}", "duty")
    assert status == 200 and got == changed
    status, listed = await hub.call("GET", f"/api/v1/cameras/{cam}", "admin")
    assert [z["id"] for z in listed["zones"]] == [road["id"], stall["id"]]


async def test_bin_reference_is_captured_from_the_live_picture(hub: RunningHub, bus_frame: np.ndarray) -> None:
    cam = await camera(hub)
    status, bin_zone = await zone(hub, cam, kind="bin", polygon=BIN, dwell_s=300, threshold=0.35)
    assert status == 201 and bin_zone["rule"] == "overflowing_bin" and bin_zone["reference_url"] is None
    _, road = await zone(hub, cam)
    ref_path = f"/api/v1/cameras/{cam}/zones/{bin_zone['id']}/reference"
    status, err = await hub.call("POST", ref_path, "admin")
    assert status == 503 and err["error"]["code"] == "no_frame"  # nothing analysed yet
    assert (await hub.call("GET", ref_path + ".png", "duty"))[0] == 404
    analytics = hub.app[ANALYTICS]
    deadline = time.monotonic() + 60
    while analytics.latest(cam) is None:
        assert time.monotonic() < deadline, "the worker never analysed the picture"
        analytics.submit(cam, time.time(), bus_frame)
        await asyncio.sleep(0.3)
    assert (await hub.call("POST", ref_path, "duty"))[0] == 403
    assert (await hub.call("POST", f"/api/v1/cameras/{cam}/zones/{road['id']}/reference", "admin"))[0] == 422
    status, captured = await hub.call("POST", ref_path, "admin")
    assert status == 201, captured
    assert captured["reference_url"] == ref_path + ".png" and captured["reference_at"] is not None
    status, png = await hub.call("GET", ref_path + ".png", "duty")
    assert status == 200
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and np.array_equal(picture, bus_frame)  # lossless: what analytics saw
    spec = analytics._cameras[cam].rules.zones[bin_zone["id"]]
    assert analytics.rule_env.reference(cam, spec) is not None  # the rules have it without a restart
    # a second capture replaces the first file
    status, again = await hub.call("POST", ref_path, "admin")
    assert status == 201 and again["reference_at"] >= captured["reference_at"]
    assert len(list((hub.app[CONFIG].data_dir / "references").iterdir())) == 1

async def test_open_case_attaches_and_precision_counts_reviews(hub: RunningHub) -> None:
    cam = await camera(hub)
    _, lane = await zone(hub, cam, dwell_s=5)
    first = await raise_flag(hub, cam, lane["id"])
    second = await raise_flag(hub, cam, lane["id"])
    status, reply = await hub.call("POST", f"/api/v1/flags/{first}/confirm", "duty", json={})
    assert status == 201, reply
    case_id = reply["case"]["id"]
    status, _ = await hub.call("POST", f"/api/v1/flags/{second}/dismiss", "duty", json={"reason": "same car"})
    assert status == 200
    third = await raise_flag(hub, cam, lane["id"])  # the car is still there: the case is open
    status, flag = await hub.call("GET", f"/api/v1/flags/{third}", "duty")
    assert flag["status"] == "attached" and flag["case_id"] == case_id
    _, pending = await hub.call("GET", "/api/v1/flags?status=pending", "duty")
    assert pending == []
    _, case = await hub.call("GET", f"/api/v1/cases/{case_id}", "duty")
    assert [e["action"] for e in case["timeline"]][-1] == "still_present"
    status, body = await hub.call("GET", "/api/v1/analytics/precision", "commander")
    assert status == 200
    (road,) = body["rules"]
    assert (road["rule"], road["confirmed"], road["dismissed"], road["attached"], road["precision"]) == (
        "occupied_road", 1, 1, 1, 0.5)
    _, mine = await hub.call("GET", f"/api/v1/analytics/precision?camera_id={cam + 1}", "duty")
    assert mine["rules"] == []
    assert (await hub.call("GET", "/api/v1/analytics/precision", "outsider"))[1]["rules"] == []
    assert (await hub.call("GET", "/api/v1/analytics/precision", "field1"))[0] == 403
    assert (await hub.call("GET", "/api/v1/analytics/precision?since=yesterday", "duty"))[0] == 422
    assert (await hub.call("GET", "/api/v1/analytics/precision"))[0] == 401


async def _analysed(hub: RunningHub, camera_id: int, ts: float) -> None:
    for _ in range(1000):
        latest = hub.app[ANALYTICS].latest(camera_id)
        if latest is not None and latest.ts >= ts:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"camera {camera_id}: the sample at {ts} was never analysed")


async def _pending(hub: RunningHub, camera_id: int) -> list[dict[str, Any]]:
    status, flags = await hub.call("GET", "/api/v1/flags?status=pending", "duty")
    assert status == 200
    return [f for f in flags if f["camera_id"] == camera_id]


async def _until_pending(hub: RunningHub, camera_id: int, n: int) -> list[dict[str, Any]]:
    for _ in range(200):
        flags = await _pending(hub, camera_id)
        if len(flags) >= n:
            return flags
        await asyncio.sleep(0.05)
    raise AssertionError(f"camera {camera_id}: {len(flags)} pending flags, expected {n}")


async def test_a_dismissed_flag_keeps_its_stay_out_of_the_review_queue(hub: RunningHub, bus_frame: np.ndarray) -> None:
    """Re-alert every minute is on. The bus that was flagged and dismissed (say, a permitted stop)
    stays on for two more minutes: nothing more reaches the queue. The same bus on a second camera,
    not dismissed, re-alerts twice (the control). Real model, real photo, real bus between the
    review and the rules."""
    analytics = hub.app[ANALYTICS]
    dismissed, control = await camera(hub), await camera(hub)
    for cam in (dismissed, control):
        status, _ = await zone(hub, cam, dwell_s=5, realert_s=60)
        assert status == 201
    t0 = time.time() - 300  # sample times (media time) lie in the past, 2 s apart

    async def play(start: int, end: int) -> None:
        for t in range(start, end, 2):
            for cam in (dismissed, control):
                analytics.submit(cam, t0 + t, bus_frame.copy())
                await _analysed(hub, cam, t0 + t)

    await play(0, 12)
    (flag,) = await _until_pending(hub, dismissed, 1)
    await _until_pending(hub, control, 1)
    status, _ = await hub.call("POST", f"/api/v1/flags/{flag['id']}/dismiss", "duty", json={"reason": "permitted stop"})
    assert status == 200
    for _ in range(200):  # the review travels over the bus to the analytics hub
        if analytics.stats.stays_dismissed == 1:
            break
        await asyncio.sleep(0.02)
    assert analytics.stats.stays_dismissed == 1
    await play(12, 132)  # re-alerts were due about 60 and 120 s after the flag
    # flags leave the hub in the order they were raised, the dismissed camera's first at each step
    assert len(await _until_pending(hub, control, 3)) == 3
    assert await _pending(hub, dismissed) == []


async def _worker_ready(hub: RunningHub) -> None:
    """Wait for the hub's local worker to load its model (and compile its batch sizes): a few seconds."""
    analytics = hub.app[ANALYTICS]
    deadline = time.monotonic() + 60
    while not any(w["ready"] for w in analytics.workers()):
        assert time.monotonic() < deadline, "the local worker never got ready"
        await asyncio.sleep(0.1)


async def test_admin_sees_the_analytics_workers_and_what_they_did(hub: RunningHub, bus_frame: np.ndarray) -> None:
    cam = await camera(hub)
    assert (await zone(hub, cam))[0] == 201
    await _worker_ready(hub)
    status, before = await hub.call("GET", "/api/v1/analytics/workers", "admin")
    assert status == 200, before
    assert (before["model"], before["imgsz"], before["local_workers"], before["cameras"]) == ("yolo26n", 640, 1, 1)
    (worker,) = before["workers"]
    assert worker["ready"] and worker["runtime"].startswith("onnxruntime/") and worker["host"]
    t = time.time()
    hub.app[ANALYTICS].submit(cam, t, bus_frame)
    await _analysed(hub, cam, t)
    _, after = await hub.call("GET", "/api/v1/analytics/workers", "admin")
    (worker,) = after["workers"]
    assert worker["answered"] >= before["workers"][0]["answered"] + 1 and worker["rtt_ms"] > 0
    assert after["counts"]["frames_analysed"] == before["counts"]["frames_analysed"] + 1
    assert after["counts"]["frames_inferred"] >= 1 and after["counts"]["jobs_lost"] == 0
    # whether analytics keeps up: the sample shows in the last minute's figures
    assert after["load"]["state"] in ("warming_up", "keeping_up"), after["load"]
    assert after["load"]["sampled"] == before["load"]["sampled"] + 1 and after["load"]["superseded"] == 0
    assert after["load"]["analysed"] == before["load"]["analysed"] + 1 and after["load"]["sample_age_p99_s"] > 0
    for name in ("commander", "duty", "field1"):  # hosts, pids and endpoints are the admin's business
        assert (await hub.call("GET", "/api/v1/analytics/workers", name))[0] == 403
    assert (await hub.call("GET", "/api/v1/analytics/workers"))[0] == 401


async def _load_events(ws: aiohttp.ClientWebSocketResponse, *, until: str | None, seconds: float) -> list[dict[str, Any]]:
    """The `analytics.load` events that come within `seconds`, stopping early at one whose state is `until`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            msg = await ws.receive_json(timeout=left)
            if msg["type"] == "event" and msg["data"]["topic"] == "analytics.load":
                got.append(msg["data"]["data"])
                if got[-1]["state"] == until:
                    break
    return got


async def test_duty_officers_learn_that_no_worker_is_analysing(hub: RunningHub) -> None:
    cam = await camera(hub)
    assert (await zone(hub, cam))[0] == 201
    await _worker_ready(hub)
    status, load = await hub.call("GET", "/api/v1/analytics/load", "duty")
    assert status == 200 and load["state"] != "no_workers", load
    duty, field = await open_ws(hub, "duty"), await open_ws(hub, "field1")
    try:
        analytics = hub.app[ANALYTICS]
        (pid,) = analytics.local_pids()
        os.kill(pid, signal.SIGKILL)  # the only worker dies; the pool replaces it after a back-off
        deadline = time.monotonic() + 10
        while (load := (await hub.call("GET", "/api/v1/analytics/load", "duty"))[1])["state"] != "no_workers":
            assert time.monotonic() < deadline, load
            await asyncio.sleep(0.1)
        assert set(load) >= {"state", "window_s", "superseded_share", "sample_age_p99_s", "slowest"}
        assert (await hub.call("GET", "/api/v1/analytics/load", "commander"))[0] == 200
        assert (await hub.call("GET", "/api/v1/analytics/load", "field1"))[0] == 403
        assert (await hub.call("GET", "/api/v1/analytics/load"))[0] == 401
        # the duty officer's console was told as it happened, and again when the replacement got ready
        told = await _load_events(duty, until="warming_up", seconds=60)
        states = [e["state"] for e in told]
        assert "no_workers" in states and states[-1] == "warming_up", told
        assert states.index("no_workers") < len(states) - 1 and told[0]["reasons"] == [] and told[0]["at"] > 0, told
        assert all(set(e) == {"state", "reasons", "at"} for e in told), told  # no camera, host or pid in it
        # a field user reads no load, and hears none of it
        assert await _load_events(field, until=None, seconds=0.5) == []
    finally:
        await duty.close()
        await field.close()
