"""The detector on real pictures with the real model (ONNX Runtime, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fusionhub.analytics.detector import Detector, letterbox, shrunk_for_model
from fusionhub.analytics.errors import DetectorError, ModelNotFoundError
from fusionhub.analytics.models import ModelFiles, fetch_model, read_model_info
from tests.conftest import REPO


@pytest.fixture(scope="module")
def detector(model_files: ModelFiles) -> Detector:
    return Detector(model_files.onnx, threads=2, conf=0.35)


def test_finds_the_bus_and_people(detector: Detector, bus_jpg: np.ndarray) -> None:
    dets = detector.detect(bus_jpg)
    buses = [d for d in dets if d.label == "bus"]
    people = [d for d in dets if d.label == "person"]
    assert len(buses) == 1 and buses[0].confidence >= 0.8
    bus = buses[0]
    # the bus spans the picture's width between y≈229 and y≈760 (in the 810x1080 original)
    assert bus.x1 < 40 and bus.x2 > 770 and 200 < bus.y1 < 260 and 720 < bus.y2 < 790
    assert len(people) >= 3
    assert all(0 <= d.x1 < d.x2 <= 810 and 0 <= d.y1 < d.y2 <= 1080 for d in dets)


def test_boxes_follow_the_frame_size(detector: Detector, bus_jpg: np.ndarray, bus_frame: np.ndarray) -> None:
    full = next(d for d in detector.detect(bus_jpg) if d.label == "bus")
    half = next(d for d in detector.detect(bus_frame) if d.label == "bus")
    for a, b in ((full.x1, half.x1), (full.y1, half.y1), (full.x2, half.x2), (full.y2, half.y2)):
        assert abs(a / 2 - b) < 12


def test_covered_bus_is_gone(detector: Detector, empty_frame: np.ndarray) -> None:
    assert not [d for d in detector.detect(empty_frame) if d.label in ("bus", "truck", "car")]


def test_letterbox_pads_grey_and_keeps_aspect() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :, 2] = 255  # pure red in BGR
    blob, lb = letterbox(frame, 64)
    assert blob.shape == (1, 3, 64, 64) and blob.dtype == np.float32
    assert lb.scale == pytest.approx(0.32) and (lb.pad_x, lb.pad_y) == (0, 16)
    assert blob[0, 0, 32, 32] == pytest.approx(1.0) and blob[0, 2, 32, 32] == 0.0  # RGB order
    assert blob[0, 0, 2, 32] == pytest.approx(114 / 255)  # padding


@pytest.mark.parametrize(("shape", "size"), [((360, 640), 320), ((576, 704), 320), ((540, 405), 320), ((360, 640), 256)])
def test_a_frame_shrunk_for_the_model_gives_it_the_same_pixels(shape: tuple[int, int], size: int) -> None:
    # what the hub sends a worker instead of the whole sample: the model's input must not change
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    small = shrunk_for_model(frame, size)
    assert max(small.shape[:2]) == size and small.nbytes < frame.nbytes / 1.5
    for rect in (True, False):
        whole, lb_whole = letterbox(frame, size, rect=rect)
        shrunk, lb_small = letterbox(small, size, rect=rect)
        assert np.array_equal(whole, shrunk)
        assert lb_small.scale == 1.0 and (lb_small.pad_x, lb_small.pad_y) == (lb_whole.pad_x, lb_whole.pad_y)


def test_a_frame_no_larger_than_the_model_is_sent_as_it_is() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    assert shrunk_for_model(frame, 640) is frame and shrunk_for_model(frame, 1280) is frame


def test_rejects_wrong_frames(detector: Detector) -> None:
    with pytest.raises(DetectorError):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(DetectorError):
        detector.detect(np.zeros((10, 10, 3), np.float32))


def test_fetch_is_idempotent_and_sidecar_describes_model(model_files: ModelFiles, model_data_dir) -> None:  # type: ignore[no-untyped-def]
    messages: list[str] = []
    again = fetch_model(model_data_dir, progress=messages.append)
    assert again == model_files
    assert any("verified" in m for m in messages) and not any("Export" in m for m in messages)
    info = read_model_info(model_files.onnx)
    assert (info.name, info.imgsz, len(info.classes)) == ("yolo26n", 640, 80)
    assert info.classes[5] == "bus"
    assert json.loads(model_files.sidecar.read_text())["weights_sha256"].startswith("9b09cc8b")


def test_missing_model_says_how_to_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelNotFoundError, match="fusionhub models fetch"):
        Detector(tmp_path / "nope-640.onnx")


def test_runtime_never_imports_torch(model_files: ModelFiles) -> None:
    code = (
        "import sys, numpy as np\n"
        "from fusionhub.analytics.detector import Detector\n"
        "from fusionhub.analytics.hub import AnalyticsHub\n"
        "from fusionhub.analytics.worker import worker_main\n"
        f"Detector({str(model_files.onnx)!r}).detect(np.zeros((64, 64, 3), np.uint8))\n"
        "print(sorted(m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
