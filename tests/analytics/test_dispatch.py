"""How the hub hands frames to workers, seen from the worker's side of the ZeroMQ protocol.

The workers here are plain DEALER sockets speaking the protocol by hand, so what the hub sends,
and when, is exact: a worker gets the next frame while it runs one (analytics.jobs_per_worker),
never more, and a worker that dies holding two frames gives both to the next worker, oldest first.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
import zmq.asyncio

from fusionhub.analytics import protocol as p
from fusionhub.analytics.hub import AnalyticsHub
from fusionhub.analytics.rules import ZoneSpec
from tests.analytics.test_hub import LANE, Flags, config, until

FRAME = np.zeros((90, 160, 3), np.uint8)


class HandWorker:
    """A worker that says and answers only what the test tells it to."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, name: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.name = name

    async def join(self, hub: AnalyticsHub, batch: int | None = None) -> dict[str, Any]:
        """Say hello and get ready; `batch`: the most frames it says it runs at once (None: as an older release)."""
        await self.sock.send_multipart([p.HELLO, p.dump({"pid": 1, "host": "test", "name": self.name})])
        cmd, body = await self.sock.recv_multipart()
        assert cmd == p.CONFIG, cmd
        config: dict[str, Any] = json.loads(body)
        ready = {"model": config["model"], "imgsz": config["imgsz"], "providers": ["by hand"], "dynamic": False,
                 "int8": False}
        await self.sock.send_multipart([p.READY, p.dump(ready if batch is None else {**ready, "batch": batch})])
        return config

    async def jobs(self, wait_s: float) -> list[dict[str, Any]]:
        """Every JOB that comes within `wait_s` (each with its pixels checked)."""
        got: list[dict[str, Any]] = []
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            if not await self.sock.poll(int(left * 1000) + 1):
                break
            frames = await self.sock.recv_multipart()
            if frames[0] != p.JOB:
                continue  # PONG: the hub checking that we are still there
            header = json.loads(frames[1])
            assert p.frame_from(header, frames[2]).shape == FRAME.shape
            got.append(header)
        return got

    async def answer(self, job: dict[str, Any], timings: dict[str, Any] | None = None) -> None:
        await self.sock.send_multipart(
            [p.RESULT, p.dump({"job_id": job["job_id"], "detections": [], "timings": timings or {}})]
        )

    def die(self) -> None:
        self.sock.close(0)


async def test_a_worker_holds_the_next_frame_while_it_runs_one_and_a_dead_one_gives_both_back(
    tmp_path: Path, model_data_dir: Path
) -> None:
    cfg = config(model_data_dir, local_workers=0, jobs_per_worker=2, job_timeout_s=120.0, job_timeout_min_s=120.0)
    hub = AnalyticsHub(cfg, data_dir=tmp_path, on_flag=Flags())
    await hub.start()
    ctx = zmq.asyncio.Context()
    try:
        cameras = (1, 2, 3)
        for cam in cameras:
            hub.set_zones(cam, [ZoneSpec(id=cam, name=f"lane {cam}", polygon=LANE, dwell_s=600)])
        first = HandWorker(ctx, hub.endpoint, "first")
        await first.join(hub)
        await until(lambda: any(w["ready"] for w in hub.workers()), 10, "the worker ready")
        for cam in cameras:
            hub.submit(cam, time.time(), FRAME)

        held = await first.jobs(1.0)
        # two frames: the one it runs and the next, waiting in its queue; the third camera waits at the hub
        assert [j["camera_id"] for j in held] == [1, 2], held
        assert hub.workers()[0]["jobs"] == 2
        await first.answer(held[0])
        more = await first.jobs(1.0)
        assert [j["camera_id"] for j in more] == [3], more  # an answer frees a place: the next frame comes
        held = [held[1], *more]
        assert hub.stats.frames_inferred == 1

        first.die()  # holding camera 2's frame (running) and camera 3's (waiting)
        await until(lambda: not hub.workers(), 10, "the dead worker forgotten")
        assert hub.stats.jobs_retried == 2 and hub.stats.jobs_lost == 0

        second = HandWorker(ctx, hub.endpoint, "second")
        await second.join(hub)
        again = await second.jobs(1.0)
        # both frames the dead worker held, the same pictures (same times), the one it ran first first
        assert [(j["camera_id"], j["ts"]) for j in again] == [(j["camera_id"], j["ts"]) for j in held], (again, held)
        for job in again:
            await second.answer(job)
        await until(lambda: hub.stats.frames_inferred == 3, 10, "both answers taken")
        assert {cam: hub.stats.by_camera[cam] for cam in cameras} == {1: 1, 2: 1, 3: 1}
        second.die()
    finally:
        await hub.stop()
        ctx.term()


async def test_a_job_whose_answer_never_came_goes_again_once_a_later_one_is_answered(
    tmp_path: Path, model_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker answers in order, so an answer that overtakes an older job's means that one's was lost
    (a worker of an older release drops answers its full connection cannot take). The hub gives
    the older job up at once and sends its frame again: that camera is not left waiting for a
    time-out that every later answer would put off."""
    cfg = config(model_data_dir, local_workers=0, jobs_per_worker=2, job_timeout_s=120.0, job_timeout_min_s=120.0)
    hub = AnalyticsHub(cfg, data_dir=tmp_path, on_flag=Flags())
    await hub.start()
    ctx = zmq.asyncio.Context()
    try:
        for cam in (1, 2):
            hub.set_zones(cam, [ZoneSpec(id=cam, name=f"lane {cam}", polygon=LANE, dwell_s=600)])
        worker = HandWorker(ctx, hub.endpoint, "lossy")
        await worker.join(hub)
        await until(lambda: any(w["ready"] for w in hub.workers()), 10, "the worker ready")
        shot = time.time()
        for cam in (1, 2):
            hub.submit(cam, shot, FRAME)
        held = await worker.jobs(1.0)
        assert [j["camera_id"] for j in held] == [1, 2], held
        await worker.answer(held[1])  # camera 1's answer was lost on the way
        again = await worker.jobs(1.0)
        # camera 1's frame, the same picture, comes again at once; it is not held back as running
        assert [(j["camera_id"], j["ts"]) for j in again] == [(1, held[0]["ts"])], again
        assert again[0]["job_id"] > held[1]["job_id"]
        assert hub.stats.jobs_retried == 1 and hub.stats.jobs_lost == 0
        assert hub.workers()[0]["jobs"] == 1
        assert f"answered job {held[1]['job_id']} but not {held[0]['job_id']} before it" in caplog.text
        await worker.answer(again[0])
        await until(lambda: hub.stats.frames_inferred == 2, 10, "both answers taken")
        assert {cam: hub.stats.by_camera[cam] for cam in (1, 2)} == {1: 1, 2: 1}
        worker.die()
    finally:
        await hub.stop()
        ctx.term()


async def test_one_job_per_worker_when_configured(tmp_path: Path, model_data_dir: Path) -> None:
    hub = AnalyticsHub(config(model_data_dir, local_workers=0, jobs_per_worker=1), data_dir=tmp_path, on_flag=Flags())
    await hub.start()
    ctx = zmq.asyncio.Context()
    try:
        for cam in (1, 2):
            hub.set_zones(cam, [ZoneSpec(id=cam, name=f"lane {cam}", polygon=LANE, dwell_s=600)])
        worker = HandWorker(ctx, hub.endpoint, "one")
        await worker.join(hub)
        await until(lambda: any(w["ready"] for w in hub.workers()), 10, "the worker ready")
        for cam in (1, 2):
            hub.submit(cam, time.time(), FRAME)
        held = await worker.jobs(1.0)
        assert [j["camera_id"] for j in held] == [1], held
        await worker.answer(held[0])
        assert [j["camera_id"] for j in await worker.jobs(1.0)] == [2]
        worker.die()
    finally:
        await hub.stop()
        ctx.term()


async def test_samples_the_media_side_could_not_decode_count_against_keeping_up(
    tmp_path: Path, model_data_dir: Path
) -> None:
    """On a box short of CPU the decode threads fall behind first, and the camera's next keyframe
    replaces the one waiting there: the load verdict must see those lost samples too."""
    hub = AnalyticsHub(config(model_data_dir, local_workers=0), data_dir=tmp_path, on_flag=Flags())
    hub.set_zones(1, [ZoneSpec(id=1, name="lane", polygon=LANE, dwell_s=600)])
    hub.submit(1, time.time(), FRAME)
    for _ in range(3):
        hub.sample_lost(1)
    hub.sample_lost(99)  # a camera without zones: not analysed, so nothing lost
    report = hub.load_report()
    assert (report["sampled"], report["superseded"]) == (4, 3)
    assert hub.status()["counts"]["frames_superseded_decoding"] == 3
