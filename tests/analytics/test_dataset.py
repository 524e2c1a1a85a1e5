"""Reviewed flags → an Ultralytics dataset: labels, splits, data.yaml; and the CLI's dataset trains
in ultralytics (one epoch, in a subprocess with the torchvision shim)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fusionhub.analytics.config import AnalyticsConfig
from fusionhub.analytics.dataset import DatasetError, export_dataset, split_of
from fusionhub.analytics.detector import Detector
from fusionhub.analytics.models import ModelFiles
from fusionhub.dispatch.db import create_engine, upgrade
from fusionhub.dispatch.service import DispatchService
from fusionhub.signaling.messages import Box, FlagRaised
from tests.analytics.scenes import BIN, LANE, camera_noise, overflowing
from tests.conftest import REPO

W, H = 405, 540


def sample(data_dir: Path, frame: np.ndarray, flag_id: str, status: str, rule: str, boxes: list[dict[str, Any]]) -> dict[str, Any]:
    rel = f"evidence/{flag_id}-frame.jpg"
    (data_dir / "evidence").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(data_dir / rel), frame)
    return {"id": flag_id, "rule": rule, "status": status, "label": boxes[0]["label"] if boxes else "",
            "boxes": boxes, "frame_width": frame.shape[1], "frame_height": frame.shape[0], "frame_path": rel}


def bx(x1: float, y1: float, x2: float, y2: float, label: str, track: int | None = 1) -> dict[str, Any]:
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label, "confidence": 0.9, "track_id": track}


def test_export_writes_yolo_labels_and_background(tmp_path: Path, bus_frame: np.ndarray, empty_frame: np.ndarray) -> None:
    data = tmp_path / "var"
    samples = [
        sample(data, bus_frame, "bus-ok", "confirmed", "occupied_road", [bx(0, 114, 402, 378, "bus"), bx(10, 300, 60, 350, "car", 2)]),
        sample(data, empty_frame, "empty-no", "dismissed", "occupied_road", [bx(0, 114, 402, 378, "bus")]),
        sample(data, overflowing(bus_frame, BIN), "bin-ok", "confirmed", "overflowing_bin",
               [bx(182, 432, 324, 530, "overflowing_bin", None), bx(200, 500, 220, 520, "bottle", None)]),
        sample(data, bus_frame, "stall-ok", "confirmed", "street_stall", [bx(100, 300, 200, 420, "umbrella")]),
        {**sample(data, bus_frame, "gone", "confirmed", "occupied_road", [bx(0, 0, 10, 10, "car")]), "frame_path": "evidence/nothing.jpg"},
        {**sample(data, bus_frame, "sneaky", "confirmed", "occupied_road", [bx(0, 0, 10, 10, "car")]), "frame_path": "../../etc/passwd"},
    ]
    out = tmp_path / "ds"
    report = export_dataset(data, samples, out, val_fraction=0.5)
    assert report.classes == ["bus", "car", "overflowing_bin", "street_stall"]
    assert (report.positives, report.negatives) == (3, 1)
    assert report.skipped["missing_frame"] == 2
    assert dict(report.boxes) == {"bus": 1, "car": 1, "overflowing_bin": 1, "street_stall": 1}  # the bottle only weighed
    assert report.images["train"] >= 1 and report.images["val"] >= 1
    split = {f: split_of(f, 0.5) for f in ("bus-ok", "empty-no", "bin-ok", "stall-ok")}
    labels = {p.stem.removeprefix("flag-"): p.read_text() for p in out.glob("labels/*/*.txt")}
    assert labels["empty-no"] == ""  # dismissed: background
    bus_line, car_line = labels["bus-ok"].splitlines()
    cls, cx, cy, w, h = bus_line.split()
    assert cls == "0" and float(cx) == pytest.approx(201 / W, abs=1e-5) and float(cy) == pytest.approx(246 / H, abs=1e-5)
    assert float(w) == pytest.approx(402 / W, abs=1e-5) and float(h) == pytest.approx(264 / H, abs=1e-5)
    assert car_line.startswith("1 ") and labels["bin-ok"].startswith("2 ") and labels["stall-ok"].startswith("3 ")
    for stem in labels:
        where = [p.parent.name for p in out.glob(f"images/*/flag-{stem}.jpg")]
        assert len(where) == 1
        if stem in split and report.images["val"] > 1:
            assert where[0] == split[stem]  # the hash decides, stable across exports
    yaml = (out / "data.yaml").read_text()
    assert 'names:\n  0: "bus"\n  1: "car"\n  2: "overflowing_bin"\n  3: "street_stall"\n' in yaml
    assert {m["flag_id"] for m in json.loads((out / "manifest.json").read_text())} == set(labels)
    with pytest.raises(DatasetError, match="not an empty directory"):
        export_dataset(data, samples, out)
    fixed = export_dataset(data, samples, tmp_path / "fixed", classes=["overflowing_bin"])
    assert fixed.classes == ["overflowing_bin"] and fixed.skipped["class_not_listed:bus"] == 1
    with pytest.raises(DatasetError, match="nothing to export"):
        export_dataset(data, samples[4:], tmp_path / "none")


# -- end to end: review → CLI export → ultralytics trains ---------------------------------------------

TRAIN = """
import json, sys
sys.path.insert(0, {repo!r})
from tests.support import torchvision_shim
torchvision_shim.install()
from ultralytics import YOLO
model = YOLO({weights!r})
result = model.train(data={data!r}, epochs=1, imgsz=160, batch=4, workers=0, device="cpu", plots=False,
                     amp=False, project={runs!r}, name="ft", exist_ok=True, verbose=False)
names = YOLO({best!r}).names
print("FH-TRAIN " + json.dumps({{"metrics": result.results_dict, "names": [names[i] for i in sorted(names)]}}))
"""


async def _reviewed(data: Path, detector: Detector, bus_frame: np.ndarray, empty_frame: np.ndarray) -> None:
    """A hub's records after a week of review: flags with clean frames, confirmed or dismissed."""
    url = f"sqlite+aiosqlite:///{data / 'fusionhub.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        s = DispatchService(engine, data_dir=data)
        admin = await s.create_user("admin", "admin-pass-1", "admin", "city", "Admin")
        duty = await s.create_user("duty", "duty-pass-1", "duty", "city", "Duty")
        scenes = [(camera_noise(bus_frame, i), "confirmed") for i in range(3)]
        scenes += [(camera_noise(cv2.flip(bus_frame, 1), 10 + i), "confirmed") for i in range(2)]
        scenes += [(camera_noise(empty_frame, 20 + i), "dismissed") for i in range(3)]
        for i, (frame, verdict) in enumerate(scenes):
            cam = await s.create_camera(admin, f"Stop {i}", "rtsp://127.0.0.1:9/s", "city")
            zone = await s.add_zone(admin, cam["id"], "lane", "road", [list(p) for p in LANE], 10, None)
            dets = [d for d in detector.detect(frame) if d.label == "bus"] or [detector.detect(bus_frame)[0]]
            rel = f"evidence/{i}.jpg"
            cv2.imwrite(str(data / rel), frame)
            cv2.imwrite(str(data / f"evidence/{i}-frame.jpg"), frame)
            flag = await s.record_flag(FlagRaised(
                flag_id=f"f{i}", camera_id=cam["id"], zone_id=zone["id"], zone_name="lane", rule="occupied_road",
                label=dets[0].label, confidence=dets[0].confidence,
                boxes=[Box(x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2, label=d.label, confidence=d.confidence, track_id=1) for d in dets],
                frame_width=frame.shape[1], frame_height=frame.shape[0], evidence_path=rel,
                frame_path=f"evidence/{i}-frame.jpg", first_seen_at=1e9, raised_at=1e9 + 10,
            ))
            if verdict == "confirmed":
                await s.confirm_flag(duty, flag["id"])
            else:
                await s.dismiss_flag(duty, flag["id"], "no bus there")
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_exported_dataset_trains_in_ultralytics(
    tmp_path: Path, model_files: ModelFiles, bus_frame: np.ndarray, empty_frame: np.ndarray
) -> None:
    data = tmp_path / "var"
    (data / "evidence").mkdir(parents=True)
    await _reviewed(data, Detector(model_files.onnx), bus_frame, empty_frame)
    out = tmp_path / "dataset"
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_CONFIG_DIR": str(tmp_path / "ucfg")}
    cli = [sys.executable, "-m", "fusionhub.console.cli", "analytics", "export-dataset", "--data-dir", str(data),
           "--out", str(out), "--val-fraction", "0.3"]
    done = await asyncio.to_thread(subprocess.run, cli, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr
    assert "5 confirmed, 3 dismissed" in done.stdout, done.stdout
    runs = tmp_path / "runs"
    code = TRAIN.format(repo=str(REPO), weights=str(model_files.weights), data=str(out / "data.yaml"),
                        runs=str(runs), best=str(runs / "ft" / "weights" / "best.pt"))
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("FH-TRAIN ")]
    assert done.returncode == 0 and lines, (done.stdout[-2000:], done.stderr[-3000:])
    result = json.loads(lines[-1].removeprefix("FH-TRAIN "))
    assert result["names"] == ["bus"]  # the fine-tuned model knows the dataset's classes
    assert "metrics/mAP50(B)" in result["metrics"]
    print(f"\none-epoch fine-tune on the review dataset: {result['metrics']}")
    # the city's model comes in by config: exported with its own class list, loaded by name
    cli = [sys.executable, "-m", "fusionhub.console.cli", "models", "import", str(runs / "ft" / "weights" / "best.pt"),
           "--name", "citynet", "--imgsz", "160", "--data-dir", str(data)]
    done = await asyncio.to_thread(subprocess.run, cli, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'model = "citynet"' in done.stdout
    config = AnalyticsConfig(model="citynet", imgsz=160)
    detector = Detector(config.resolved_model_path(data), conf=0.05)
    assert (detector.name, detector.classes) == ("citynet", ("bus",))
    assert all(d.label == "bus" for d in detector.detect(bus_frame))
