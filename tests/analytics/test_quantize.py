"""`fusionhub models quantize` and `analytics.precision = "int8"`, with the real model on real
photos: the INT8 copy finds what the float model finds, a copy that does not is refused and never
written, and the hub, its local workers and a remote worker run it (or say plainly why not)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq
import zmq.asyncio

from fusionhub.analytics import protocol as p
from fusionhub.analytics.detector import Detector
from fusionhub.analytics.errors import ModelExportError, ModelMismatchError, ModelNotFoundError
from fusionhub.analytics.geometry import iou
from fusionhub.analytics.hub import AnalyticsHub
from fusionhub.analytics.models import ModelFiles, read_model_info
from fusionhub.analytics.quantize import quantize_model
from fusionhub.analytics.rules import ZoneSpec
from fusionhub.console.cli import main as cli_main
from tests.analytics.test_hub import LANE, Flags, _free_port, config, feed, remote_refusal, running, until

pytestmark = pytest.mark.slow


def _variants(photo: np.ndarray) -> list[np.ndarray]:
    """The photo as other cameras and hours would show it: cropped, mirrored, darker, brighter, smaller."""
    h, w = photo.shape[:2]
    dusk = np.clip(photo.astype(np.float32) * 0.45, 0, 255).astype(np.uint8)
    glare = cv2.convertScaleAbs(photo, alpha=1.2, beta=30)
    return [
        photo, cv2.flip(photo, 1), dusk, glare, photo[: h * 3 // 4, :], photo[:, w // 4 :],
        cv2.resize(photo, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
    ]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory, bus_jpg: np.ndarray) -> Path:
    import ultralytics

    zidane = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"))
    assert zidane is not None
    out = tmp_path_factory.mktemp("calibration")
    for name, photo in (("bus", bus_jpg), ("zidane", zidane)):
        for i, image in enumerate(_variants(photo)):
            assert cv2.imwrite(str(out / f"{name}-{i}.jpg"), image)
    return out


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory: pytest.TempPathFactory, model_files: ModelFiles, pictures: Path) -> Path:
    """A data directory with the float model and the INT8 copy the CLI wrote from `pictures`."""
    data = tmp_path_factory.mktemp("int8-data")
    (data / "models").mkdir()
    for f in (model_files.onnx, model_files.sidecar):
        shutil.copy(f, data / "models" / f.name)
    assert cli_main(["models", "quantize", "--data-dir", str(data), "--images", str(pictures)]) == 0
    return data


def test_quantize_writes_a_checked_int8_copy(int8_dir: Path, model_files: ModelFiles) -> None:
    q8 = int8_dir / "models" / "yolo26n-640-int8.onnx"
    info = read_model_info(q8)
    assert (info.name, info.imgsz, info.precision, info.dynamic) == ("yolo26n", 640, "int8", True)
    assert info.classes == model_files.classes
    side = json.loads(q8.with_suffix(".json").read_text())
    assert side["source_onnx_sha256"] == read_model_info(model_files.onnx).onnx_sha256
    assert side["calibration"]["pictures"] == 12 and side["calibration"]["kept_float"] == ["/model.0/", "/model.23/"]
    # 14 pictures: every 5th (2) held out, so the check ran on pictures calibration never saw
    assert side["agreement"]["held_out"] is True and side["agreement"]["pictures"] == 2 * 2
    assert side["agreement"]["recall"] >= 0.9 and side["agreement"]["precision"] >= 0.9
    assert q8.stat().st_size < model_files.onnx.stat().st_size / 2  # 8-bit weights
    assert not list((int8_dir / "models").glob("fh-int8-*"))  # no temporary left behind


@pytest.mark.parametrize("size", [320, 640])
def test_int8_copy_finds_what_the_float_model_finds(
    int8_dir: Path, model_files: ModelFiles, bus_jpg: np.ndarray, size: int
) -> None:
    ref = Detector(model_files.onnx, threads=2).detect_timed(bus_jpg, size)[0]
    q8 = Detector(int8_dir / "models" / "yolo26n-640-int8.onnx", threads=2).detect_timed(bus_jpg, size)[0]
    assert sorted(d.label for d in q8) == sorted(d.label for d in ref)
    assert "bus" in {d.label for d in q8} and sum(d.label == "person" for d in q8) >= 3
    deltas = []
    for d in ref:  # each object where the float model puts it, with a score a little off at most
        best = max((e for e in q8 if e.label == d.label), key=lambda e: iou(d, e))
        assert iou(d, best) >= 0.8 and abs(best.confidence - d.confidence) < 0.3, (d, best)
        deltas.append(abs(best.confidence - d.confidence))
    assert np.mean(deltas) < 0.1, deltas


def test_quantising_again_replaces_the_copy_and_its_sidecar_together(tmp_path: Path, int8_dir: Path, pictures: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(int8_dir / "models", models)
    q8 = models / "yolo26n-640-int8.onnx"
    q8.write_bytes(b"an older copy")  # its sidecar no longer vouches for it
    report = quantize_model(models / "yolo26n-640.onnx", sorted(pictures.glob("bus-*.jpg")))
    assert report.onnx == q8 and not report.held_out and report.calibrated_on == 7
    side = json.loads(q8.with_suffix(".json").read_text())
    assert side["onnx_sha256"] == hashlib.sha256(q8.read_bytes()).hexdigest()
    assert side["calibration"]["pictures"] == 7 and read_model_info(q8).precision == "int8"


def test_a_copy_that_disagrees_is_refused_and_not_written(tmp_path: Path, model_files: ModelFiles, pictures: Path) -> None:
    for f in (model_files.onnx, model_files.sidecar):
        shutil.copy(f, tmp_path / f.name)
    photos = sorted(pictures.glob("*.jpg"))
    # quantising the end-to-end head as well wrecks its scores: the check must catch it
    with pytest.raises(ModelExportError, match="agrees with the float model on .* not written"):
        quantize_model(tmp_path / model_files.onnx.name, photos, keep_float=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolo26n-640.json", "yolo26n-640.onnx"]


def test_quantize_without_readable_pictures_says_so(tmp_path: Path, model_files: ModelFiles, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "models").mkdir()
    for f in (model_files.onnx, model_files.sidecar):
        shutil.copy(f, tmp_path / "models" / f.name)
    (tmp_path / "junk.jpg").write_bytes(b"not a picture")
    assert cli_main(["models", "quantize", "--data-dir", str(tmp_path), "--images", str(tmp_path / "junk.jpg")]) == 1
    assert "none of the calibration pictures could be read" in capsys.readouterr().err
    assert cli_main(["models", "quantize", "--data-dir", str(tmp_path), "--images", str(tmp_path / "nowhere")]) == 1
    assert "no such picture or directory" in capsys.readouterr().err
    assert not (tmp_path / "models" / "yolo26n-640-int8.onnx").exists()


async def test_hub_on_int8_flags_the_parked_bus(
    tmp_path: Path, int8_dir: Path, bus_frame: np.ndarray, empty_frame: np.ndarray
) -> None:
    flags = Flags()
    async with running(config(int8_dir, precision="int8"), tmp_path, flags, ready=1) as hub:
        assert [w["runtime"].endswith(" int8") for w in hub.workers()] == [True]
        hub.set_zones(5, [ZoneSpec(id=11, name="bus lane", polygon=LANE, dwell_s=2.0)])
        await feed(hub, 5, empty_frame, 2.0)
        bus_from = time.time()
        await feed(hub, 5, bus_frame, 20.0, stop=lambda: bool(flags.got))
        await feed(hub, 5, bus_frame, 3.0)
    assert len(flags.got) == 1
    flag = flags.got[0][1]
    assert flag.label == "bus" and flag.confidence >= 0.7 and flag.first_seen_at >= bus_from


async def test_hub_on_int8_without_the_copy_says_how_to_make_it(tmp_path: Path, model_files: ModelFiles) -> None:
    (tmp_path / "models").mkdir()
    for f in (model_files.onnx, model_files.sidecar):
        shutil.copy(f, tmp_path / "models" / f.name)
    hub = AnalyticsHub(config(tmp_path, precision="int8"), data_dir=tmp_path, on_flag=Flags())
    with pytest.raises(ModelNotFoundError, match="fusionhub models quantize"):
        await hub.start()
    await hub.stop()


async def test_an_int8_copy_of_an_earlier_export_is_not_loaded(tmp_path: Path, int8_dir: Path) -> None:
    """A model import or a new export replaced the float model: its old INT8 copy must not run on."""
    models = tmp_path / "models"
    shutil.copytree(int8_dir / "models", models)
    side = models / "yolo26n-640.json"
    raw = json.loads(side.read_text())
    raw["onnx_sha256"] = "0" * 64  # what a new export of the float model writes
    side.write_text(json.dumps(raw))
    hub = AnalyticsHub(config(tmp_path, precision="int8"), data_dir=tmp_path, on_flag=Flags())
    with pytest.raises(ModelMismatchError, match="earlier export of yolo26n-640.onnx.*fusionhub models quantize"):
        await hub.start()
    await hub.stop()


async def test_remote_worker_without_the_int8_copy_refuses(tmp_path: Path, model_data_dir: Path, model_files: ModelFiles) -> None:
    float_only = tmp_path / "worker-models"
    float_only.mkdir()
    for f in (model_files.onnx, model_files.sidecar):
        shutil.copy(f, float_only / f.name)
    status, err, workers = await remote_refusal(model_data_dir, tmp_path, float_only, precision="int8")
    assert status == 2
    assert "yolo26n-640-int8.onnx" in err and "fusionhub models quantize" in err
    assert workers == []


async def test_a_worker_that_loaded_the_float_model_gets_no_frames_from_an_int8_hub(
    tmp_path: Path, int8_dir: Path, bus_frame: np.ndarray
) -> None:
    """A worker of an older release ignores CONFIG's int8 and says READY for the float model."""
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    hub = AnalyticsHub(config(int8_dir, local_workers=0, bind=endpoint, precision="int8"), data_dir=tmp_path, on_flag=Flags())
    await hub.start()
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        await sock.send_multipart([p.HELLO, p.dump({"pid": 1, "host": "old", "name": "old"})])
        cmd, body = await asyncio.wait_for(sock.recv_multipart(), 10)
        assert cmd == p.CONFIG and p.load(body)["int8"] is True
        await sock.send_multipart([p.READY, p.dump({"model": "yolo26n", "imgsz": 640, "providers": ["x"], "dynamic": True})])
        await until(lambda: [w["runtime"] for w in hub.workers()] == ["x"], 5, "the READY to arrive")
        hub.set_zones(5, [ZoneSpec(id=1, name="z", polygon=LANE)])
        hub.submit(5, time.time(), bus_frame)
        got_job = False
        end = time.monotonic() + 1.5
        while time.monotonic() < end and not got_job:
            if await sock.poll(100):
                got_job = (await sock.recv_multipart())[0] == p.JOB
        assert not got_job
        assert [w["ready"] for w in hub.workers()] == [False]
    finally:
        sock.close(0)
        ctx.term()
        await hub.stop()


async def test_local_workers_use_the_hubs_openvino_precision(tmp_path: Path, model_data_dir: Path) -> None:
    async with running(config(model_data_dir, providers=["openvino"], precision="f32"), tmp_path, Flags(), ready=1) as hub:
        assert [w["runtime"] for w in hub.workers()] == ["openvino/CPU/f32"]
