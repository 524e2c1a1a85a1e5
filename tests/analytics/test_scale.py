"""Scaling analytics with the real model and real worker processes: the motion gate keeps a parked
bus flagged while it skips inference, many cameras share few workers fairly, a remote worker
pool killed with kill -9 loses no flag and is replaced, and a frozen worker is given up and rejoins."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionhub.analytics import load as load_module
from fusionhub.analytics.config import CameraAnalysis
from fusionhub.analytics.detector import Detector
from fusionhub.analytics.rules import ZoneSpec
from fusionhub.analytics.runtime import available_runtimes
from tests.analytics.test_hub import LANE, Flags, _free_port, config, feed, running
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame as a camera would send it twice: the same scene, fresh sensor noise."""
    return np.clip(frame.astype(np.int16) + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)


async def test_motion_gate_skips_a_parked_bus_and_still_flags_it_once(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray, empty_frame: np.ndarray
) -> None:
    flags = Flags()
    rng = np.random.default_rng(3)
    dwell = 3.0
    async with running(config(model_data_dir, motion_gate=True), tmp_path, flags, ready=1) as hub:
        hub.set_zones(5, [ZoneSpec(id=11, name="bus lane", polygon=LANE, dwell_s=dwell)])
        thumbnailer = hub.thumbnailer
        assert thumbnailer is not None  # the media gateway makes each sample's thumbnail with it

        def submit(frame: np.ndarray) -> None:
            hub.submit(5, time.time(), frame, thumbnailer(frame))

        for _ in range(6):  # the empty road, then the bus arrives and stays; every frame freshly noisy
            submit(_noisy(empty_frame, rng))
            await asyncio.sleep(0.25)
        arrived = time.time()
        before = (hub.stats.frames_inferred, hub.stats.frames_gated)
        while time.time() - arrived < dwell + 3.0:
            submit(_noisy(bus_frame, rng))
            await asyncio.sleep(0.25)
        inferred = hub.stats.frames_inferred - before[0]
        gated = hub.stats.frames_gated - before[1]
        for _ in range(4):  # it leaves: the change is analysed, the road is empty again
            hub.submit(5, time.time(), _noisy(empty_frame, rng))
            await asyncio.sleep(0.25)
        latest = hub.latest(5)
        total_inferred = hub.stats.frames_inferred

    assert gated >= 15 and inferred <= 2, (inferred, gated)  # only the arrival went to the detector
    assert len(flags.got) == 1
    flag = flags.got[0][1]
    assert flag.label == "bus" and flag.first_seen_at >= arrived - 0.3
    assert flag.raised_at - flag.first_seen_at >= dwell
    assert flags.got[0][0] - arrived < dwell + 1.5  # the dwell ran on skipped frames, not on refreshes
    assert total_inferred >= 3  # the bus leaving was looked at
    assert latest is not None and not [d for d in latest.detections if d.label == "bus"]


async def test_motion_far_from_every_zone_costs_no_inference_and_the_parked_bus_is_still_flagged(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray
) -> None:
    """A flag flaps over the rooftops while a bus stands in the lane. Camera 5 watches only the bus
    lane: after the bus's arrival its samples skip the detector, and the bus is flagged once on
    time. Camera 6 has a zone up there too: the same pictures go to the detector."""
    flags = Flags()
    rng = np.random.default_rng(9)
    rooftops = [(0.0, 0.02), (1.0, 0.02), (1.0, 0.2), (0.0, 0.2)]
    dwell = 3.0

    shown = [0]

    def flapping() -> np.ndarray:
        frame = _noisy(bus_frame, rng)
        shown[0] += 1
        frame[10:100, :] = 255 if shown[0] % 2 else 0  # the flag: its light and dark sides in turn
        return frame

    async def run(hub: Any, camera: int, samples: int) -> tuple[int, int, float]:
        """(inferred, gated) after the first sample, and when the first was offered."""
        thumbnailer = hub.thumbnailer
        assert thumbnailer is not None
        first = time.time()
        for n in range(samples):
            frame = flapping()
            hub.submit(camera, time.time(), frame, thumbnailer(frame))
            await asyncio.sleep(0.25)
            if n == 0:
                before = (hub.stats.frames_inferred, hub.stats.frames_gated)
        return hub.stats.frames_inferred - before[0], hub.stats.frames_gated - before[1], first

    async with running(config(model_data_dir, motion_gate=True), tmp_path, flags, ready=1) as hub:
        hub.set_zones(5, [ZoneSpec(id=11, name="bus lane", polygon=LANE, dwell_s=dwell)])
        hub.set_zones(6, [ZoneSpec(id=12, name="bus lane", polygon=LANE, dwell_s=600.0),
                          ZoneSpec(id=13, name="rooftops", polygon=rooftops, dwell_s=600.0)])
        inferred5, gated5, arrived = await run(hub, 5, 24)
        inferred6, gated6, _ = await run(hub, 6, 8)

    assert inferred5 <= 1 and gated5 >= 20, (inferred5, gated5)
    assert gated6 == 0 and inferred6 >= 5, (inferred6, gated6)
    assert [f.camera_id for _, f in flags.got] == [5], "one flag, the dwell ran on skipped samples"
    assert flags.got[0][1].label == "bus" and flags.got[0][0] - arrived < dwell + 1.5


async def test_camera_without_gate_is_analysed_every_time(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray
) -> None:
    async with running(config(model_data_dir, motion_gate=True), tmp_path, Flags(), ready=1) as hub:
        hub.configure_camera(6, CameraAnalysis(motion_gate=False, imgsz=320))
        hub.set_zones(6, [ZoneSpec(id=1, name="z", polygon=LANE, dwell_s=600)])
        await feed(hub, 6, bus_frame, 2.0)
        assert hub.stats.frames_gated == 0 and hub.stats.frames_inferred >= 3
        latest = hub.latest(6)
        assert latest is not None and any(d.label == "bus" for d in latest.detections)  # at 320 px too


async def test_a_worker_gets_the_frame_at_its_models_size_and_the_boxes_come_back_in_the_samples_pixels(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray
) -> None:
    # a 405x540 sample for a model at 320 goes out as 240x320: what a remote worker's link carries
    here = Detector(model_data_dir / "models" / "yolo26n-640.onnx", threads=1)
    expected = [d for d in here.detect_timed(bus_frame, 320)[0] if d.label == "bus"]
    assert len(expected) == 1
    async with running(config(model_data_dir), tmp_path, Flags(), ready=1) as hub:
        hub.configure_camera(6, CameraAnalysis(imgsz=320))
        hub.set_zones(6, [ZoneSpec(id=1, name="z", polygon=LANE, dwell_s=600)])
        await feed(hub, 6, bus_frame, 1.5)
        inferred, sent = hub.stats.frames_inferred, hub.stats.frame_bytes_sent
        latest = hub.latest(6)
    assert inferred >= 2 and sent == inferred * 240 * 320 * 3  # not 405 * 540 * 3
    assert latest is not None and latest.frame.shape == bus_frame.shape  # the rules and evidence keep the sample
    buses = [d for d in latest.detections if d.label == "bus"]
    assert len(buses) == 1
    got, want = buses[0], expected[0]
    # the worker rounds its boxes to 0.1 px of the frame it got: 0.17 px of the sample
    for a, b in ((got.x1, want.x1), (got.y1, want.y1), (got.x2, want.x2), (got.y2, want.y2)):
        assert abs(a - b) < 0.3, (got, want)
    assert abs(got.confidence - want.confidence) < 1e-3


async def test_many_cameras_few_workers_no_camera_starves(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray, empty_frame: np.ndarray
) -> None:
    cameras, seconds = 48, 8.0
    cfg = config(model_data_dir, worker_threads=1)  # one worker, one thread: far fewer jobs than frames
    async with running(cfg, tmp_path, Flags(), ready=1) as hub:
        for cam in range(1, cameras + 1):
            hub.set_zones(cam, [ZoneSpec(id=cam, name=f"lane {cam}", polygon=LANE, dwell_s=600)])
        started = time.time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # every camera offers a frame 4 times a second
            for cam in range(1, cameras + 1):
                hub.submit(cam, time.time(), bus_frame if cam % 2 else empty_frame)
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)
        stats = hub.stats
        seen: dict[int, list[float]] = {}
        for cam, ts, _age in stats.recent:
            seen.setdefault(cam, []).append(ts)

    rate = stats.frames_analysed / seconds
    # in turn: each camera waits at most about one pass over all the others
    bound = 2.0 * cameras / rate + 1.0
    gaps = {cam: max(b - a for a, b in zip([started, *ts], [*ts, started + seconds], strict=True)) for cam, ts in seen.items()}
    counts = sorted(len(ts) for ts in seen.values())
    print(f"\n{stats.frames_analysed} analysed ({rate:.1f}/s) of {stats.frames_submitted}; per camera {counts[0]}..{counts[-1]}; "
          f"longest wait {max(gaps.values()):.2f} s (bound {bound:.2f} s)")
    assert stats.frames_dropped > stats.frames_analysed  # overloaded: most frames are superseded
    assert len(seen) == cameras
    assert counts[-1] - counts[0] <= 2  # shared evenly
    assert max(gaps.values()) <= bound


async def test_an_overloaded_hub_says_it_is_behind_and_when_it_caught_up(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray, empty_frame: np.ndarray,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(load_module, "CHECK_S", 0.5)
    monkeypatch.setattr(load_module, "WARN_AFTER_S", 1.0)
    caplog.set_level(logging.INFO, logger="fusionhub.analytics.load")
    cameras, window = 24, 10.0
    cfg = config(model_data_dir, worker_threads=1, load_window_s=window)
    async with running(cfg, tmp_path, Flags(), ready=1) as hub:
        for cam in range(1, cameras + 1):
            hub.set_zones(cam, [ZoneSpec(id=cam, name=f"lane {cam}", polygon=LANE, dwell_s=600)])
        started = time.monotonic()
        while time.monotonic() - started < window + 2:  # 96 samples a second for one worker thread
            for cam in range(1, cameras + 1):
                hub.submit(cam, time.time(), bus_frame if cam % 2 else empty_frame)
            await asyncio.sleep(0.25)
        behind = hub.status()["load"]
        await asyncio.sleep(1.5)  # a supervision check or two
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "is behind" in r.getMessage()]
        # then one camera a second, which one worker handles with ease, for a whole window
        light = time.monotonic()
        while time.monotonic() - light < window + 2:
            hub.submit(1, time.time(), bus_frame)
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)
        caught_up = hub.status()["load"]
        recovered = [r.getMessage() for r in caplog.records if "keeps up again" in r.getMessage()]

    print(f"\noverloaded: {behind}\nlight: {caught_up}")
    assert behind["state"] == "behind" and "superseded" in behind["reasons"], behind
    assert behind["superseded_share"] > 0.5 and behind["analysed"] < behind["sampled"] / 2
    assert behind["cameras_sampled"] == cameras and len(behind["slowest"]) == 5
    assert all(c["analysed_per_s"] < c["sampled_per_s"] for c in behind["slowest"])
    assert len(warned) == 1 and "superseded before they were analysed" in warned[0] and "Add workers" in warned[0], warned
    assert caught_up["state"] == "keeping_up" and caught_up["superseded"] == 0, caught_up
    # analysed counts when the analysis ends, sampled when the sample came: a sample may straddle the window's edge
    assert caught_up["cameras_sampled"] == 1 and caught_up["sampled"] >= window - 2
    assert abs(caught_up["analysed"] - caught_up["sampled"]) <= 1
    assert len(recovered) == 1, recovered


def _worker_pool(endpoint: str, processes: int) -> subprocess.Popen[str]:
    """`fusionhub worker --connect ... --processes N`, as an operator starts it on another machine."""
    cmd = [sys.executable, "-m", "fusionhub.console.cli", "worker", "--connect", endpoint,
           "--processes", str(processes), "--threads", "1", "--runtime", "openvino,cpu"]
    return subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True)


async def _stop_pool(proc: subprocess.Popen[str]) -> str:
    """Stop a worker pool (SIGTERM to its group, SIGKILL if it lingers); returns what it wrote to stderr."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.to_thread(proc.wait, 20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    return err


async def test_remote_worker_killed_mid_stream_loses_no_flag_and_is_replaced(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray
) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    flags = Flags()
    # job timeouts far beyond the test: only the closed connection can tell the hub that the worker died
    cfg = config(model_data_dir, local_workers=0, bind=endpoint, track_grace_s=10.0, job_timeout_s=120.0,
                 job_timeout_min_s=120.0)
    proc = _worker_pool(endpoint, 2)
    try:
        async with running(cfg, tmp_path, flags, ready=2) as hub:
            hub.set_zones(5, [ZoneSpec(id=11, name="bus lane", polygon=LANE, dwell_s=4.0)])
            cameras = (5, 6, 7, 8)  # more than the two workers: each holds a frame waiting behind the one it runs
            for cam in cameras[1:]:
                hub.set_zones(cam, [ZoneSpec(id=10 + cam, name="other lane", polygon=LANE, dwell_s=600)])
            pids = {w["pid"] for w in hub.workers()}
            rng = np.random.default_rng(5)
            end = time.monotonic() + 30.0

            def warm() -> bool:  # the bus is being tracked and both workers answer (their own timeouts apply)
                by_worker = hub.stats.by_worker
                return hub.stats.by_camera[5] >= 2 and len(by_worker) == 2 and min(by_worker.values()) >= 3

            while time.monotonic() < end and not warm():
                for cam in cameras:
                    hub.submit(cam, time.time(), _noisy(bus_frame, rng))
                await asyncio.sleep(0.05)
            assert warm(), dict(hub.stats.by_worker)
            end = time.monotonic() + 5.0
            while time.monotonic() < end and not any(w["jobs"] == 2 and w["pid"] in pids for w in hub.workers()):
                for cam in cameras:
                    hub.submit(cam, time.time(), _noisy(bus_frame, rng))
                await asyncio.sleep(0.005)
            full = [w["pid"] for w in hub.workers() if w["jobs"] == 2 and w["pid"] in pids]
            assert full, hub.workers()  # a worker holds one frame and has the next waiting
            victim = full[0]
            killed_at = time.time()
            os.kill(victim, signal.SIGKILL)  # mid-stream, most likely mid-job, with a second frame queued
            end = time.monotonic() + 20.0  # ends as soon as the flag and the replacement are there
            while time.monotonic() < end and not (
                flags.got and {w["pid"] for w in hub.workers() if w["ready"]} - pids and len(hub.workers()) == 2
            ):
                for cam in cameras:
                    hub.submit(cam, time.time(), _noisy(bus_frame, rng))
                await asyncio.sleep(0.1)
            await feed(hub, 5, bus_frame, 2.0)  # it stays: still one flag
            workers = hub.workers()
            stats = hub.stats
    finally:
        err = await _stop_pool(proc)

    assert len(flags.got) == 1, ([f for _, f in flags.got], stats, workers)
    assert flags.got[0][1].first_seen_at < killed_at  # the stay was counted across the worker's death
    assert stats.jobs_retried + stats.jobs_lost >= 2  # both frames it held were taken back from it
    replacement = {w["pid"] for w in workers} - pids
    assert victim not in {w["pid"] for w in workers} and len(replacement) == 1, (workers, err[-2000:])
    assert all(w["ready"] for w in workers)
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    print(f"\nkilled {victim}; replaced by {replacement}; retried {stats.jobs_retried}, lost {stats.jobs_lost}; "
          f"per worker {dict(stats.by_worker)}")


async def test_remote_worker_frozen_mid_job_is_given_up_and_rejoins_when_it_thaws(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray
) -> None:
    """A worker machine that hangs (SIGSTOP stops its ZeroMQ thread too) mid-job: the transport
    heartbeat closes its connection, its frame goes to the other worker well before the job timeout,
    and once it runs again it says hello and takes frames again."""
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    flags = Flags()
    cfg = config(model_data_dir, local_workers=0, bind=endpoint, heartbeat_s=0.5, worker_silence_s=2.0,
                 job_timeout_s=120.0, job_timeout_min_s=120.0)
    proc = _worker_pool(endpoint, 2)
    frozen: int | None = None
    rng = np.random.default_rng(7)
    try:
        async with running(cfg, tmp_path, flags, ready=2) as hub:
            for cam in (5, 6):
                hub.set_zones(cam, [ZoneSpec(id=10 + cam, name="lane", polygon=LANE, dwell_s=600)])

            async def offer_until(done: Any, seconds: float, pause: float = 0.05) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end and not done():
                    for cam in (5, 6):
                        hub.submit(cam, time.time(), _noisy(bus_frame, rng))
                    await asyncio.sleep(pause)

            await offer_until(lambda: len(hub.stats.by_worker) == 2 and min(hub.stats.by_worker.values()) >= 3, 30)
            assert len(hub.stats.by_worker) == 2, dict(hub.stats.by_worker)
            await offer_until(lambda: any(w["busy"] for w in hub.workers()), 5, pause=0.005)
            busy = [w for w in hub.workers() if w["busy"]]
            assert busy, hub.workers()
            frozen, label = busy[0]["pid"], busy[0]["label"]
            other = next(w["label"] for w in hub.workers() if w["pid"] != frozen)
            os.kill(frozen, signal.SIGSTOP)
            before = hub.stats.by_worker[other]

            def given_up() -> bool:
                return frozen not in {w["pid"] for w in hub.workers()}

            await offer_until(given_up, 15)
            assert given_up(), hub.workers()  # the 120 s job timeout cannot have done it
            assert hub.stats.jobs_retried + hub.stats.jobs_lost == 1
            await offer_until(lambda: hub.stats.by_worker[other] >= before + 5, 15)
            assert hub.stats.by_worker[other] >= before + 5  # the cameras went on with the other worker

            os.kill(frozen, signal.SIGCONT)
            thawed_before = hub.stats.by_worker[label]

            def back() -> bool:
                return hub.stats.by_worker[label] > thawed_before

            await offer_until(back, 20)
            workers = hub.workers()
            assert back(), workers  # it rejoined under the same process and analyses again
            assert sorted(w["pid"] for w in workers) == sorted({frozen, *(w["pid"] for w in workers)})
            assert len(workers) == 2 and all(w["ready"] for w in workers), workers
    finally:
        if frozen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGCONT)
        await _stop_pool(proc)
    assert flags.got == []  # dwell 600 s: the freeze raised nothing by itself


async def test_local_workers_on_auto_share_one_runtime(tmp_path: Path, model_data_dir: Path) -> None:
    """Two workers started together on `auto`: one times the runtimes, both run what it chose."""
    async with running(config(model_data_dir, local_workers=2, providers=["auto"]), tmp_path, Flags(), ready=2) as hub:
        runtimes = [w["runtime"] for w in hub.workers()]
        choice = json.loads((tmp_path / "run" / "analytics-auto-runtime.json").read_text())
    assert len(runtimes) == 2 and runtimes[0] == runtimes[1], runtimes
    assert runtimes[0].startswith({"cpu": "onnxruntime/", "openvino": "openvino/"}[choice["runtime"]]), (runtimes, choice)


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs Linux CPU affinity and 2 CPUs"
)
async def test_local_workers_run_on_every_cpu_of_the_hub_even_when_started_from_a_thread_pinned_to_one(
    tmp_path: Path, model_data_dir: Path, bus_frame: np.ndarray
) -> None:
    """A child starts with the affinity of the thread that starts it. The pool starts workers from
    the loop's executor threads; one pinned to a core would tie every worker it starts to that core
    (the capacity bench found both its workers tied to core 0, the box's other core left over)."""
    everything = os.sched_getaffinity(0)
    one_core = {min(everything)}
    loop = asyncio.get_running_loop()
    pinned = ThreadPoolExecutor(2, initializer=os.sched_setaffinity, initargs=(0, one_core))
    loop.set_default_executor(pinned)
    try:
        assert await asyncio.to_thread(os.sched_getaffinity, 0) == one_core  # what the workers are started from
        providers = ["openvino"] if "openvino" in available_runtimes() else ["cpu"]
        async with running(config(model_data_dir, local_workers=2, providers=providers), tmp_path, Flags(), ready=2) as hub:
            hub.set_zones(3, [ZoneSpec(id=1, name="z", polygon=LANE, dwell_s=600)])
            await feed(hub, 3, bus_frame, 1.5)  # the workers have run the model (OpenVINO may pin as it runs)
            inferred = hub.stats.frames_inferred
            cpus = [os.sched_getaffinity(pid) for pid in hub.local_pids()]
    finally:
        pinned.shutdown(wait=True)
    assert inferred >= 2
    assert cpus == [everything, everything], (providers, cpus)
