"""The rules on real pictures with the real model (YOLO26n, ONNX Runtime, in this process).

Scenes come from real photos: bus.jpg (a bus in the kerb lane) and the same street with the bus
painted out; a bin zone on the cobbled pavement, later with bags piled on it (garment pieces of
the photos). Samples are 1 s apart in frame time, so minutes of "video" take a second.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from fusionhub.analytics.bins import zone_box
from fusionhub.analytics.config import AnalyticsConfig
from fusionhub.analytics.detection import Detection
from fusionhub.analytics.detector import Detector
from fusionhub.analytics.flags import FlagEmitter, FlagWork, build_sighting
from fusionhub.analytics.hub import AnalyticsHub
from fusionhub.analytics.models import ModelFiles
from fusionhub.analytics.ruleconfig import RulesConfig
from fusionhub.analytics.rules import CameraRules, RuleFlag, ZoneSpec
from fusionhub.analytics.ruleset import RuleEnv
from fusionhub.analytics.stats import HubStats
from fusionhub.dispatch.db import create_engine, upgrade
from fusionhub.dispatch.service import DispatchService
from fusionhub.signaling.messages import FlagRaised
from tests.analytics import scenes
from tests.analytics.scenes import BIN, LANE

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=SHANGHAI).timestamp()


@pytest.fixture(scope="module")
def detector(model_files: ModelFiles) -> Detector:
    return Detector(model_files.onnx, threads=2, conf=0.35)


@pytest.fixture(scope="module")
def seen(detector: Detector, bus_frame: np.ndarray, empty_frame: np.ndarray) -> Callable[[str], tuple[np.ndarray, list[Detection]]]:
    """Named scenes and what the real detector finds in each (each picture detected once)."""
    frames: dict[str, np.ndarray] = {"bus": bus_frame, "empty": empty_frame}
    for i in range(3):
        frames[f"same{i}"] = scenes.camera_noise(bus_frame, seed=i)
    frames["pile"] = scenes.overflowing(bus_frame, BIN)
    frames["pile_noisy"] = scenes.camera_noise(frames["pile"], seed=7)
    for g in (0.6, 0.8, 1.3, 1.6):
        frames[f"gamma{g}"] = scenes.camera_noise(scenes.gamma(bus_frame, g), seed=11)
    for b in (-40, 40):
        frames[f"bright{b}"] = scenes.camera_noise(scenes.brightness(bus_frame, b), seed=12)
    cache: dict[str, tuple[np.ndarray, list[Detection]]] = {}

    def get(name: str) -> tuple[np.ndarray, list[Detection]]:
        if name not in cache:
            cache[name] = (frames[name], detector.detect(frames[name]))
        return cache[name]

    return get


def play(rules: CameraRules, seen: Callable[[str], tuple[np.ndarray, list[Detection]]], script: list[tuple[str, int]],
         t0: float = T0) -> list[RuleFlag]:
    """Feed named scenes for so many 1-s samples each, in order; the flags raised."""
    flags: list[RuleFlag] = []
    t = t0
    for name, seconds in script:
        frame, dets = seen(name)
        for _ in range(seconds):
            flags += rules.update(t, dets, frame.shape[1], frame.shape[0], frame)
            t += 1.0
    return flags


def lane(**kw: Any) -> ZoneSpec:
    return ZoneSpec.model_validate({"id": 11, "name": "bus lane", "polygon": LANE, "dwell_s": 10, **kw})


def test_vehicle_past_dwell_is_one_flag_and_a_return_is_a_second(seen: Any) -> None:
    rules = CameraRules(5, [lane()])
    first = play(rules, seen, [("empty", 20), ("bus", 60)])
    assert len(first) == 1  # a minute in the lane: one flag, not sixty
    flag = first[0]
    assert (flag.zone.rule, flag.detection.label, flag.ts - flag.first_seen_at) == ("occupied_road", "bus", 10.0)
    assert flag.first_seen_at == T0 + 20
    again = play(rules, seen, [("empty", 10), ("bus", 30)], t0=T0 + 80)
    assert len(again) == 1 and again[0].first_seen_at == T0 + 90  # left, came back: a new stay
    assert again[0].track_id != flag.track_id


def test_outside_the_time_window_nothing(seen: Any) -> None:
    env = RuleEnv(timezone="Asia/Shanghai")
    zone = lane(windows=["07:00-19:00"])
    night = datetime(2025, 3, 3, 20, 0, tzinfo=SHANGHAI).timestamp()
    assert play(CameraRules(5, [zone], env=env), seen, [("bus", 600)], t0=night) == []
    dawn = datetime(2025, 3, 3, 6, 58, tzinfo=SHANGHAI).timestamp()
    flags = play(CameraRules(5, [zone], env=env), seen, [("bus", 300)], t0=dawn)
    # parked since 06:58, but the rule starts counting at 07:00
    assert [datetime.fromtimestamp(f.ts, SHANGHAI).strftime("%H:%M:%S") for f in flags] == ["07:00:10"]


def bin_rules(bus_frame: np.ndarray, **kw: Any) -> CameraRules:
    env = RuleEnv()
    zone = ZoneSpec.model_validate(
        {"id": 21, "name": "bin by stop", "kind": "bin", "polygon": BIN, "dwell_s": 20, "reference": "r.png", **kw}
    )
    env.put_reference(5, zone.id, "r.png", bus_frame, zone.polygon)  # captured from the live picture
    return CameraRules(5, [zone], env=env)


def test_bin_reference_check_flags_an_overflowing_zone_once(seen: Any, bus_frame: np.ndarray) -> None:
    rules = bin_rules(bus_frame)
    normal = [("same0", 15), ("same1", 15), ("same2", 15)]
    assert play(rules, seen, normal) == []
    reading = rules.bin_readings[21]
    assert reading.score < 0.1 and not reading.occluded
    flags = play(rules, seen, [("pile", 10), ("pile_noisy", 50)], t0=T0 + 45)
    assert len(flags) == 1
    flag = flags[0]
    assert (flag.zone.rule, flag.detection.label, flag.track_id) == ("overflowing_bin", "overflowing_bin", None)
    assert flag.ts - flag.first_seen_at == 20.0 and flag.detection.confidence >= 0.5
    print(f"\nbin scores: normal {reading.score:.3f}, overflowing {rules.bin_readings[21].score:.3f} "
          f"(threshold {rules.bin_readings[21].threshold:.2f})")
    # emptied (back to normal past the grace), then it overflows again: a second flag
    again = play(rules, seen, [("same0", 15), ("pile", 30)], t0=T0 + 105)
    assert len(again) == 1


def test_bin_reference_check_ignores_light_changes(seen: Any, bus_frame: np.ndarray) -> None:
    rules = bin_rules(bus_frame)
    dusk = [(name, 15) for name in ("gamma0.8", "gamma1.3", "gamma1.6", "bright-40", "gamma0.6", "bright40")]
    assert play(rules, seen, dusk) == []
    ref = rules.env.reference(5, rules.zones[21])
    assert ref is not None
    scores = {}
    for name, _ in dusk:
        frame, dets = seen(name)
        scores[name] = rules.bins[21].read(frame, dets, BIN, ref, rules.env.config, None).score
    print("\nbin scores under light changes: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    assert max(scores.values()) < 0.1
    # a raw-intensity comparison would have called every one of these a change
    x0, y0, x1, y1 = zone_box(BIN, bus_frame.shape[1], bus_frame.shape[0])
    before = bus_frame[y0:y1, x0:x1].astype(int)
    raw = [float(np.abs(seen(n)[0][y0:y1, x0:x1].astype(int) - before).mean()) for n, _ in dusk]
    assert min(raw) > 10


# -- an open case in the zone: the next occupation attaches to it ------------------------------------


@pytest.fixture
async def dispatch(tmp_path: Path) -> AsyncIterator[tuple[DispatchService, dict[str, Any], dict[str, Any]]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/fh.db"
    await upgrade(url)
    engine = create_engine(url)
    service = DispatchService(engine, data_dir=tmp_path)
    admin = await service.create_user("admin", "admin-pass-1", "admin", "city", "Admin")
    duty = await service.create_user("duty", "duty-pass-1", "duty", "city", "Duty")
    try:
        yield service, admin, duty
    finally:
        await engine.dispose()


async def test_open_case_in_the_zone_attaches_instead_of_flagging(
    tmp_path: Path, seen: Any, dispatch: tuple[DispatchService, dict[str, Any], dict[str, Any]]
) -> None:
    service, admin, duty = dispatch
    cam = await service.create_camera(admin, "Stop 7", "rtsp://127.0.0.1:9/s", "city")
    zone = await service.add_zone(admin, cam["id"], "bus lane", "road", [list(p) for p in LANE], 10, None)
    recorded: list[dict[str, Any]] = []

    async def on_flag(msg: FlagRaised) -> None:
        recorded.append(await service.record_flag(msg))

    emitter = FlagEmitter(tmp_path, on_flag, quality=85, stats=HubStats())
    emitter.start()
    rules = CameraRules(cam["id"], [lane(id=zone["id"])])
    try:
        for flag in play(rules, seen, [("empty", 5), ("bus", 30)]):
            frame = seen("bus")[0]
            await emitter.put(FlagWork(flag, frame, f"flag-{len(recorded)}-{flag.ts}"))
        await asyncio.wait_for(_until(lambda: len(recorded) == 1), 10)
        first = recorded[0]
        assert first["status"] == "pending"
        _, case = await service.confirm_flag(duty, first["id"])
        # the bus drives off and another stops in the same lane while the case is open
        for flag in play(rules, seen, [("empty", 10), ("bus", 30), ("empty", 10), ("bus", 30)], t0=T0 + 35):
            await emitter.put(FlagWork(flag, seen("bus")[0], f"flag-{len(recorded)}-{flag.ts}"))
        await asyncio.wait_for(_until(lambda: len(recorded) == 3), 10)
    finally:
        await emitter.stop()
    later = recorded[1:]
    assert [f["status"] for f in later] == ["attached", "attached"]
    assert all(f["case_id"] == case["id"] for f in later)
    assert await service.list_flags(duty, "pending") == []  # no new flag in the review queue
    timeline = (await service.get_case(duty, case["id"]))["timeline"]
    present = [e for e in timeline if e["action"] == "still_present"]
    assert len(present) == 1  # at most one per 10 minutes however often it is seen
    assert present[0]["data"]["flag_id"] == later[0]["id"] and present[0]["to_status"] == case["status"]
    # the clean frame lies next to the evidence, undrawn
    stored = await service.review_samples()
    assert [s["id"] for s in stored] == [first["id"]]  # the confirmed one; attached flags are not reviews
    flag_row = await service.get_flag(duty, first["id"])
    assert flag_row["has_frame"]
    evidence = tmp_path / "evidence"
    frames = sorted(evidence.glob("*-frame.jpg"))
    assert len(frames) == 3
    clean = cv2.imread(str(frames[0]))
    assert clean is not None and float(np.abs(clean.astype(int) - seen("bus")[0].astype(int)).mean()) < 3


async def test_a_bus_that_stays_while_its_case_is_open_is_noted_still_present(
    tmp_path: Path, seen: Any, dispatch: tuple[DispatchService, dict[str, Any], dict[str, Any]]
) -> None:
    """No re-alert configured: the bus that was flagged, confirmed and is still there minutes later
    adds "still present" to its case (no new flag); before a case is open a sighting changes nothing."""
    service, admin, duty = dispatch
    cam = await service.create_camera(admin, "Stop 8", "rtsp://127.0.0.1:9/s", "city")
    zone = await service.add_zone(admin, cam["id"], "bus lane", "road", [list(p) for p in LANE], 10, None)
    rules = CameraRules(cam["id"], [lane(id=zone["id"])], env=RuleEnv(RulesConfig(sighting_s=60)))
    flags = play(rules, seen, [("empty", 5), ("bus", 30)])
    assert len(flags) == 1
    frame = seen("bus")[0]
    stored: list[FlagRaised] = []

    async def keep(msg: FlagRaised) -> None:
        stored.append(msg)

    emitter = FlagEmitter(tmp_path, keep, quality=85, stats=HubStats())
    emitter.start()
    try:
        await emitter.put(FlagWork(flags[0], frame, "first-stay"))
        await asyncio.wait_for(_until(lambda: len(stored) == 1), 10)
    finally:
        await emitter.stop()
    # the bus stays on: a sighting a minute after the flag, while the flag still waits for review
    sightings = []
    for t in range(35, 200):
        assert rules.update(T0 + t, seen("bus")[1], frame.shape[1], frame.shape[0], frame) == []
        sightings += [build_sighting(s) for s in rules.sightings]
    assert [s.seen_at - T0 for s in sightings] == [75.0, 135.0, 195.0]
    assert all(s.first_seen_at == T0 + 5 and s.flagged_at == T0 + 15 and s.label == "bus" for s in sightings)
    assert await service.record_sighting(sightings[0]) is False  # no case yet: nothing to note
    flag = await service.record_flag(stored[0])
    _, case = await service.confirm_flag(duty, flag["id"])
    assert await service.record_sighting(sightings[1]) is True
    assert await service.record_sighting(sightings[1]) is False  # the same event delivered again
    assert await service.record_sighting(sightings[2]) is False  # one note per 10 minutes at most
    timeline = (await service.get_case(duty, case["id"]))["timeline"]
    present = [e for e in timeline if e["action"] == "still_present"]
    assert [(e["data"]["seen_at"], e["data"]["label"], e["to_status"]) for e in present] == [
        (T0 + 135, "bus", case["status"])
    ]
    assert await service.list_flags(duty, "pending") == []  # and the review queue stayed empty
    assert await service.verify_timeline(case["id"])


async def _until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.02)


# -- a custom-trained model drops in by config alone --------------------------------------------------


def custom_model(model_files: ModelFiles, models: Path) -> Path:
    """The real exported network under another name, with its own class list: a city's model whose
    vehicle class is `parked_vehicle` and which has an `overflowing_bin` class (here the network's
    person and bus outputs, renamed)."""
    models.mkdir(parents=True, exist_ok=True)
    onnx = models / f"citynet-{model_files.imgsz}.onnx"
    shutil.copyfile(model_files.onnx, onnx)
    side = json.loads(model_files.sidecar.read_text())
    classes = [f"thing{i}" for i in range(len(side["classes"]))]
    classes[side["classes"].index("bus")] = "parked_vehicle"
    classes[side["classes"].index("person")] = "overflowing_bin"
    side.update(name="citynet", classes=classes)
    onnx.with_suffix(".json").write_text(json.dumps(side))
    return onnx


async def test_custom_model_with_its_own_classes_by_config_alone(
    tmp_path: Path, model_files: ModelFiles, bus_frame: np.ndarray
) -> None:
    custom_model(model_files, tmp_path / "models")
    config = AnalyticsConfig.model_validate(
        {
            "model": "citynet",
            "model_dir": str(tmp_path / "models"),
            "rules": {"classes": {"vehicle": ["parked_vehicle"]}},
        }
    )
    got: list[FlagRaised] = []

    async def on_flag(msg: FlagRaised) -> None:
        got.append(msg)

    hub = AnalyticsHub(config, data_dir=tmp_path, on_flag=on_flag)
    await hub.start()
    try:
        assert hub.rule_env.model_classes is not None and "parked_vehicle" in hub.rule_env.model_classes
        bin_zone = ZoneSpec(id=2, name="bin", kind="bin", dwell_s=2, polygon=[(0.25, 0.45), (0.45, 0.45), (0.45, 0.75), (0.25, 0.75)])
        hub.set_zones(1, [lane(id=1, dwell_s=2), bin_zone])
        deadline = time.monotonic() + 60
        while len({f.rule for f in got}) < 2 and time.monotonic() < deadline:
            hub.submit(1, time.time(), bus_frame)
            await asyncio.sleep(0.5)
    finally:
        await hub.stop()
    by_rule = {f.rule: f for f in got}
    assert set(by_rule) == {"occupied_road", "overflowing_bin"}
    assert by_rule["occupied_road"].label == "parked_vehicle"  # the model's own class name
    # no reference was captured: the model's overflowing_bin class decided
    assert by_rule["overflowing_bin"].label == "overflowing_bin" and by_rule["overflowing_bin"].boxes[0].track_id is not None
    assert len(got) == 2
