"""Frames that wait for a worker go through the model together (analytics.batch_max).

What a user relies on: a frame run in a batch is found exactly as it is alone, a bad frame fails
alone, every job gets its own answer in the order it came, and the hub gives a worker that batches
enough frames to fill its batches (and an older worker no more than before).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import zmq
import zmq.asyncio

from fusionhub.analytics import protocol as p
from fusionhub.analytics import runtime
from fusionhub.analytics.config import WorkerConfig
from fusionhub.analytics.detection import Detection
from fusionhub.analytics.detector import Detector
from fusionhub.analytics.errors import DetectorError
from fusionhub.analytics.hub import AnalyticsHub
from fusionhub.analytics.models import ModelFiles, sidecar_path
from fusionhub.analytics.rules import ZoneSpec
from fusionhub.analytics.worker import _Session, worker_main
from tests.analytics.test_dispatch import FRAME, HandWorker
from tests.analytics.test_hub import LANE, Flags, config, until

RUNTIMES = ["cpu", *(["openvino"] if "openvino" in runtime.available_runtimes() else [])]


def _wide(bus_jpg: np.ndarray) -> np.ndarray:
    """A 16:9 camera frame: the bus picture's middle band, scaled as the gateway samples (640x360)."""
    h, w = bus_jpg.shape[:2]
    band = bus_jpg[(h - w * 9 // 16) // 2 :][: w * 9 // 16]
    return cv2.resize(band, (640, 360), interpolation=cv2.INTER_AREA)


def _same(alone: list[Detection], together: list[Detection]) -> None:
    """The same objects: labels, boxes within a pixel or two, scores within a few points."""
    assert sorted(d.label for d in alone) == sorted(d.label for d in together), (alone, together)
    for a in alone:
        b = min((d for d in together if d.label == a.label),
                key=lambda d: abs(d.x1 - a.x1) + abs(d.y1 - a.y1) + abs(d.x2 - a.x2) + abs(d.y2 - a.y2))
        assert max(abs(a.x1 - b.x1), abs(a.y1 - b.y1), abs(a.x2 - b.x2), abs(a.y2 - b.y2)) < 3, (a, b)
        assert abs(a.confidence - b.confidence) < 0.03, (a, b)


@pytest.mark.parametrize("providers", RUNTIMES)
def test_frames_run_together_find_what_each_finds_alone(
    model_files: ModelFiles, bus_jpg: np.ndarray, bus_frame: np.ndarray, empty_frame: np.ndarray, providers: str
) -> None:
    det = Detector(model_files.onnx, threads=1, providers=[providers])
    assert det.batches  # the exported model's batch dimension is free
    # three portrait frames (one input shape at 320), the middle one with the bus covered, and a
    # 16:9 frame (another shape)
    frames = [bus_jpg, _wide(bus_jpg), empty_frame, bus_frame]
    together = det.detect_many([(f, 320) for f in frames], max_batch=4)
    # frames of one shape run together: the three portrait ones in one model run, the 16:9 one alone
    assert [r[1].batch for r in together if not isinstance(r, DetectorError)] == [3, 1, 3, 3]
    for frame, result in zip(frames, together, strict=True):
        assert not isinstance(result, DetectorError), result
        alone, t = det.detect_timed(frame, 320)
        assert t.batch == 1
        _same(alone, result[0])
        assert result[1].inference_cpu_ms > 0
    # each frame got its own answer: the covered bus is not found, the others are
    assert [any(d.label == "bus" for d in r[0]) for r in together if not isinstance(r, DetectorError)] == [
        True, True, False, True
    ]
    # no more than max_batch at once
    five = det.detect_many([(f, 320) for f in (bus_jpg, cv2.flip(bus_jpg, 1), bus_frame, bus_jpg, bus_frame)],
                           max_batch=4)
    assert [r[1].batch for r in five if not isinstance(r, DetectorError)] == [4, 4, 4, 4, 1]


def test_a_bad_frame_fails_alone(model_files: ModelFiles, bus_jpg: np.ndarray) -> None:
    det = Detector(model_files.onnx, threads=1)
    grey = np.zeros((360, 640), np.uint8)
    results = det.detect_many([(bus_jpg, 320), (grey, 320), (bus_jpg, 100), (bus_jpg, 320)], max_batch=4)
    assert isinstance(results[1], DetectorError) and "HxWx3" in str(results[1])
    assert isinstance(results[2], DetectorError) and "multiple of 32" in str(results[2])
    for good in (results[0], results[3]):
        assert not isinstance(good, DetectorError)
        assert good[1].batch == 2 and any(d.label == "bus" for d in good[0])


def test_one_at_a_time_when_asked(model_files: ModelFiles, bus_jpg: np.ndarray) -> None:
    det = Detector(model_files.onnx, threads=1)
    results = det.detect_many([(bus_jpg, 320)] * 3, max_batch=1)
    assert [r[1].batch for r in results if not isinstance(r, DetectorError)] == [1, 1, 1]


@pytest.mark.parametrize("providers", RUNTIMES)
def test_a_model_exported_for_one_frame_at_a_time_runs_them_one_by_one(
    tmp_path: Path, model_files: ModelFiles, bus_jpg: np.ndarray, providers: str
) -> None:
    import onnx

    model = onnx.load(str(model_files.onnx))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # batch fixed at 1, sides still free
    fixed = tmp_path / model_files.onnx.name
    onnx.save(model, str(fixed))
    shutil.copy(sidecar_path(model_files.onnx), sidecar_path(fixed))
    det = Detector(fixed, threads=1, providers=[providers])
    assert not det.batches and det.dynamic
    assert det.warm(320, 4) == 1  # what the worker then tells the hub
    results = det.detect_many([(bus_jpg, 320)] * 3, max_batch=4)
    assert [r[1].batch for r in results if not isinstance(r, DetectorError)] == [1, 1, 1]
    assert all(any(d.label == "bus" for d in r[0]) for r in results if not isinstance(r, DetectorError))


class HandHub:
    """The hub's side of the protocol, spoken by hand to a real worker."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.identity = b""

    def recv(self, timeout_s: float = 60.0) -> tuple[bytes, dict[str, Any]]:
        while True:
            assert self.sock.poll(int(timeout_s * 1000)), "the worker said nothing"
            identity, cmd, body = self.sock.recv_multipart()
            if cmd != p.PING:
                self.identity = identity
                return cmd, json.loads(body)

    def send(self, cmd: bytes, body: dict[str, Any], *extra: bytes) -> None:
        self.sock.send_multipart([self.identity, cmd, p.dump(body), *extra])

    def job(self, job_id: int, frame: np.ndarray, header: dict[str, Any] | None = None) -> None:
        """A JOB for `frame` at 320 px; `header` replaces the true one."""
        raw = p.dump(header) if header else p.job_header(job_id, 1, time.time(), frame, imgsz=320)
        self.sock.send_multipart([self.identity, p.JOB, raw, frame.tobytes()])


def test_a_worker_runs_the_frames_waiting_for_it_together_and_answers_each_in_its_order(
    tmp_path: Path, model_files: ModelFiles, bus_jpg: np.ndarray
) -> None:
    endpoint = f"ipc://{tmp_path}/hub.sock"
    ctx: zmq.Context[Any] = zmq.Context()
    hub = HandHub(ctx, endpoint)
    stop = threading.Event()
    cfg = WorkerConfig.model_validate({"connect": endpoint, "model_dir": model_files.onnx.parent, "threads": 1})
    worker = threading.Thread(target=worker_main, args=(cfg, stop), daemon=True)
    worker.start()
    try:
        assert hub.recv()[0] == p.HELLO
        bus = np.ascontiguousarray(_wide(bus_jpg))
        covered = bus.copy()
        covered[40:330, 30:610] = 128  # the bus painted over
        # sent before the worker has loaded the model (it takes a second): all six wait in its socket,
        # so it takes the first four messages at once (job 4's header is wrong), then the last two
        hub.send(p.CONFIG, {"model": "yolo26n", "imgsz": 640, "conf": 0.35, "int8": False, "batch": 4})
        for job_id in (1, 2, 3):
            hub.job(job_id, covered if job_id == 2 else bus)
        hub.job(4, bus, {"job_id": 4, "camera_id": 1, "ts": time.time(), "shape": [10, 10, 3], "dtype": "uint8"})
        for job_id in (5, 6):
            hub.job(job_id, bus)
        cmd, ready = hub.recv()
        assert cmd == p.READY and ready["batch"] == 4
        answers = [hub.recv() for _ in range(6)]
        assert [(cmd, body["job_id"]) for cmd, body in answers] == [
            (p.RESULT, 1), (p.RESULT, 2), (p.RESULT, 3), (p.ERROR, 4), (p.RESULT, 5), (p.RESULT, 6)
        ]
        assert "header says (10, 10, 3)" in answers[3][1]["reason"]
        results = [body for cmd, body in answers if cmd == p.RESULT]
        assert [body["timings"]["batch"] for body in results] == [3, 3, 3, 2, 2]
        # each answer is its own frame's: the covered bus (job 2) is not found
        assert [any(d["label"] == "bus" for d in body["detections"]) for body in results] == [
            True, False, True, True, True
        ]
    finally:
        stop.set()
        worker.join(10)
        hub.sock.close(0)
        ctx.term()


async def test_the_hub_fills_a_batching_worker_and_an_older_one_as_before(tmp_path: Path, model_data_dir: Path) -> None:
    cfg = config(model_data_dir, local_workers=0, jobs_per_worker=2, batch_max=4, job_timeout_s=120.0,
                 job_timeout_min_s=120.0)
    hub = AnalyticsHub(cfg, data_dir=tmp_path, on_flag=Flags())
    await hub.start()
    ctx = zmq.asyncio.Context()
    try:
        cameras = range(1, 13)
        for cam in cameras:
            hub.set_zones(cam, [ZoneSpec(id=cam, name=f"lane {cam}", polygon=LANE, dwell_s=600)])
        batching = HandWorker(ctx, hub.endpoint, "batching")
        config_seen = await batching.join(hub, batch=4)
        assert config_seen["batch"] == 4  # the hub tells the worker how many frames to run at once
        await until(lambda: any(w["ready"] for w in hub.workers()), 10, "the worker ready")
        for cam in cameras:
            hub.submit(cam, time.time(), FRAME)
        held = await batching.jobs(1.0)
        # two batches: the one it runs and the next, waiting; the other four cameras wait at the hub
        assert [j["camera_id"] for j in held] == list(range(1, 9)), held
        for job in held[:4]:
            await batching.answer(job, timings={"batch": 4})
        await until(lambda: hub.stats.frames_inferred == 4, 10, "four answers taken")
        assert [j["camera_id"] for j in await batching.jobs(1.0)] == [9, 10, 11, 12]
        (shown,) = hub.workers()
        assert (shown["batch"], shown["batch_mean"], shown["jobs"]) == (4, 4.0, 8)
        assert hub.stats.frames_batched == 16
        batching.die()
        await until(lambda: not hub.workers(), 10, "the worker forgotten")

        older = HandWorker(ctx, hub.endpoint, "older")
        await older.join(hub, batch=None)  # an older release says nothing of batches
        again = await older.jobs(1.0)
        assert len(again) == 2, again  # jobs_per_worker frames, as before
        assert hub.workers()[0]["batch"] == 1
        older.die()
    finally:
        await hub.stop()
        ctx.term()


def test_answers_wait_for_a_full_connection_in_order_and_none_is_dropped(tmp_path: Path) -> None:
    """A worker answers a whole batch at once. When its connection cannot take them all yet (the hub's
    event loop is busy), the rest wait in the worker, in order, rather than vanish: a lost answer
    would leave its camera's job unanswered."""
    ctx: zmq.Context[Any] = zmq.Context()
    hub = ctx.socket(zmq.ROUTER)
    hub.setsockopt(zmq.RCVHWM, 1)
    hub.bind("inproc://hub")
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, 1)  # a connection that is full after a message or two
    sock.connect("inproc://hub")
    session = _Session(WorkerConfig(connect="ipc:///unused", model_dir=tmp_path), sock)
    try:
        for job_id in range(12):
            session.send(p.RESULT, {"job_id": job_id, "detections": []})
        assert session.outbox, "the connection took all twelve: the test proves nothing"
        got: list[int] = []
        for _ in range(100):  # the worker's loop: it offers what waits each time round
            if hub.poll(100, zmq.POLLIN):
                _identity, cmd, body = hub.recv_multipart()
                assert cmd == p.RESULT
                got.append(json.loads(body)["job_id"])
            session.flush()
            if len(got) == 12:
                break
        assert got == list(range(12)) and not session.outbox
        # a hub that forgot the worker gave its jobs up: their answers are not kept for a new one
        session.send(p.RESULT, {"job_id": 12, "detections": []})
        session.send(p.RESULT, {"job_id": 13, "detections": []})
        session.send(p.RESULT, {"job_id": 14, "detections": []})
        assert session.outbox
        session.hello()
        assert not session.outbox
    finally:
        sock.close(0)
        hub.close(0)
        ctx.term()
