"""The analytics hub: frames in (latest wins per camera), jobs out to workers over ZeroMQ,
detections back through the rules, flags (with evidence) out through `on_flag`.

Rule state (tracks, dwell timers) lives here, not in workers, so a worker that dies loses at most
one perishable frame and never a flag. Cameras with a frame waiting queue in one first-come line
for free workers, so none starves however many there are; a frame that barely changed since the
camera's last analysed one skips the workers (motion.py) and reuses its detections.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

from fusionhub.analytics import protocol as p
from fusionhub.analytics.config import AnalyticsConfig, CameraAnalysis, WorkerConfig
from fusionhub.analytics.detection import Detection
from fusionhub.analytics.detector import shrunk_for_model
from fusionhub.analytics.errors import AnalyticsError, ModelMismatchError, ModelNotFoundError, WorkerProtocolError
from fusionhub.analytics.flags import FlagEmitter, FlagWork, build_sighting
from fusionhub.analytics.load import LoadWatch, LoadWindow
from fusionhub.analytics.models import read_model_info, stale_int8_copy
from fusionhub.analytics.motion import GateSettings, MotionGate, thumbnail, zones_window
from fusionhub.analytics.pool import LocalWorkers, WorkerConfigFactory
from fusionhub.analytics.rules import CameraRules, ZoneSpec
from fusionhub.analytics.ruleset import RuleEnv, model_classes
from fusionhub.analytics.stats import HubStats
from fusionhub.signaling.messages import AnalyticsLoad, FlagRaised, ZoneSighting
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SUPERVISE_S = 0.25
MAX_ATTEMPTS = 2  # a frame whose worker died is tried once more, unless a newer one came
RTT_SAMPLES = 3  # answered jobs before a worker's own round trip sets its job timeout
RTT_FACTOR = 10.0


@dataclass(frozen=True)
class AnalysedFrame:
    """The latest frame of a camera that went through the detector, and what it found."""

    ts: float
    frame: np.ndarray
    detections: tuple[Detection, ...]


@dataclass
class _Frame:
    ts: float
    frame: np.ndarray
    attempts: int = 0
    thumb: np.ndarray | None = None  # motion-gate thumbnail: from the decode thread, or once computed


@dataclass
class _Job:
    id: int
    camera_id: int
    item: _Frame
    sent_at: float
    sent_size: tuple[int, int]  # width, height of the frame the worker got: its boxes are in these pixels
    # when the worker could start on it: sent_at, or when the job before it in the worker's queue
    # was answered; its round trip and its timeout count from here
    started_at: float = 0.0


@dataclass
class _Camera:
    rules: CameraRules
    gate: MotionGate
    imgsz: int | None = None
    pending: _Frame | None = None
    busy: bool = False
    latest: AnalysedFrame | None = None


@dataclass
class _Worker:
    identity: bytes
    label: str
    pid: int
    host: str
    last_seen: float
    ready: bool = False
    # the jobs it holds, oldest first: it runs one while the next waits in its queue (jobs_per_worker),
    # so it never sits idle while the hub's event loop gets round to sending it another
    jobs: dict[int, _Job] = field(default_factory=dict)
    last_job_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    answered: int = 0
    batched: int = 0  # over the jobs it answered, the sum of the batch each ran in
    rtt_s: float = 0.0  # moving average of its round trips

    @property
    def batch(self) -> int:
        """The most frames it runs at once, as it said when ready (1 from a worker of an older release)."""
        return p.batch_size(self.extra.get("batch"))

    def depth(self, config: AnalyticsConfig) -> int:
        """How many jobs it may hold: `jobs_per_worker` batches, so the next batch waits while it runs one."""
        return config.jobs_per_worker * self.batch

    @property
    def current(self) -> _Job | None:
        """The job it runs now (the oldest it holds)."""
        return next(iter(self.jobs.values()), None)

    def timeout_s(self, config: AnalyticsConfig) -> float:
        """How long its current job may take: its usual round trip times ten, within the configured bounds."""
        if self.answered < RTT_SAMPLES:
            return config.job_timeout_s
        return min(config.job_timeout_s, max(config.job_timeout_min_s, RTT_FACTOR * self.rtt_s))


class AnalyticsHub:
    """Routes sampled frames to analytics workers and turns their detections into flags."""

    def __init__(
        self,
        config: AnalyticsConfig,
        *,
        data_dir: Path,
        on_flag: Callable[[FlagRaised], Awaitable[None]],
        on_sighting: Callable[[ZoneSighting], Awaitable[None]] | None = None,
        on_load: Callable[[AnalyticsLoad], Awaitable[None]] | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.config = config
        self._on_sighting = on_sighting
        self._on_load = on_load
        self.data_dir = Path(data_dir)
        # rule context shared by every camera: class map, the hub's time zone, bin references
        self.rule_env = RuleEnv(config.rules, timezone=timezone)
        self.endpoint = config.resolved_bind(self.data_dir)
        self._int8 = config.precision == "int8"
        self.stats = HubStats()
        self.load = LoadWindow(config.load_window_s)
        self._load_watch = LoadWatch(self.load_report)
        self._workers_changed = False  # a worker got ready or was forgotten since the load was last judged
        self._cameras: dict[int, _Camera] = {}
        self._analysis: dict[int, CameraAnalysis] = {}
        # cameras with a frame waiting and none in flight, longest waiting first: every camera is
        # served within one pass over the others, however many there are (no camera starves)
        self._ready: OrderedDict[int, None] = OrderedDict()
        self._gate = GateSettings(
            config.motion_gate, config.motion_pixel_delta, config.motion_min_changed, config.motion_refresh_s
        )
        self._workers: dict[bytes, _Worker] = {}
        self._job_ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._emitter = FlagEmitter(self.data_dir, on_flag, quality=config.evidence_quality, stats=self.stats)
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._pool: LocalWorkers | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._stopped = False
        self._host = socket.gethostname()

    # -- cameras (called on the loop) -------------------------------------------------------

    def set_zones(self, camera_id: int, zones: list[ZoneSpec]) -> None:
        """Replace a camera's zones; a camera without zones is not analysed at all."""
        if not zones:
            self.remove_camera(camera_id)
            return
        cam = self._cameras.get(camera_id)
        if cam is None:
            rules = CameraRules(
                camera_id, zones, match_iou=self.config.track_iou, grace_s=self.config.track_grace_s, env=self.rule_env
            )
            cam = self._cameras[camera_id] = _Camera(rules, MotionGate(self._gate))
            self._apply_analysis(camera_id)
        else:
            cam.rules.set_zones(zones)
        cam.gate.window = zones_window([z.polygon for z in zones], self.config.motion_zone_margin)

    def remove_camera(self, camera_id: int) -> None:
        """Forget a camera: its pending frame, tracks and dwell timers (an in-flight result is ignored)."""
        if self._cameras.pop(camera_id, None) is not None:
            self._ready.pop(camera_id, None)

    def flag_dismissed(self, camera_id: int, flag_id: str) -> bool:
        """A reviewer dismissed a flag: the stay it was about does not re-alert while it lasts.
        False when this hub does not know the flag (another hub's camera, or the stay is over)."""
        cam = self._cameras.get(camera_id)
        if cam is None or not cam.rules.dismissed(flag_id):
            return False
        self.stats.stays_dismissed += 1
        log.info("camera %d: flag %s dismissed; its stay will not re-alert", camera_id, flag_id)
        return True

    def configure_camera(self, camera_id: int, analysis: CameraAnalysis | None) -> None:
        """A camera's own settings (input size, motion gate); kept while the camera has no zones too."""
        if analysis is None or analysis == CameraAnalysis():
            self._analysis.pop(camera_id, None)
        else:
            self._analysis[camera_id] = analysis
        self._apply_analysis(camera_id)

    def _apply_analysis(self, camera_id: int) -> None:
        cam = self._cameras.get(camera_id)
        if cam is None:
            return
        analysis = self._analysis.get(camera_id, CameraAnalysis())
        cam.imgsz = analysis.imgsz
        settings = self._gate if analysis.motion_gate else GateSettings(enabled=False)
        if settings != cam.gate.settings:
            cam.gate = MotionGate(settings, cam.gate.window)

    @property
    def thumbnailer(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """What the media side should compute for each sample in its decode thread and pass to
        `submit` as `thumb` (the motion gate's thumbnail), so the loop does not; None with the gate off."""
        return thumbnail if self._gate.enabled else None

    def submit(self, camera_id: int, ts: float, frame: np.ndarray, thumb: np.ndarray | None = None) -> None:
        """Offer a sampled BGR frame (epoch seconds `ts`); never blocks. The latest frame wins.

        `thumb`: `thumbnailer(frame)`, computed off the loop; without it the gate computes its own.
        The hub keeps a reference to `frame`: the caller must not write to it afterwards.
        """
        cam = self._cameras.get(camera_id)
        if cam is None:
            self.stats.frames_ignored += 1
            return
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            self.stats.frames_rejected += 1
            log.debug("camera %d: frame %s %s is not HxWx3 uint8 BGR; ignored", camera_id, frame.shape, frame.dtype)
            return
        self.stats.frames_submitted += 1
        self.load.sampled(camera_id)
        if cam.pending is not None:
            self.stats.frames_dropped += 1  # superseded before any worker was free
            self.load.superseded(camera_id)
        cam.pending = _Frame(ts, frame, thumb=thumb)
        self._queue(camera_id, cam)

    def sample_lost(self, camera_id: int) -> None:
        """A sample the media side could not take: the camera's next keyframe replaced it before a
        decode thread was free. Counted like one superseded here, so the load verdict sees it."""
        if camera_id not in self._cameras:
            return
        self.stats.frames_superseded_decoding += 1
        self.load.sampled(camera_id)
        self.load.superseded(camera_id)

    def _queue(self, camera_id: int, cam: _Camera) -> None:
        """Put a camera with a waiting frame in line (keeping its place if it already has one)."""
        if cam.pending is not None and not cam.busy and camera_id not in self._ready:
            self._ready[camera_id] = None
        self._wake.set()

    def latest(self, camera_id: int) -> AnalysedFrame | None:
        """The camera's latest analysed frame and its detections, if any."""
        cam = self._cameras.get(camera_id)
        return cam.latest if cam else None

    def workers(self) -> list[dict[str, Any]]:
        """The workers the hub knows now (for status pages and tests); `runtime`: what a ready one runs on."""
        return [
            {
                "label": w.label, "pid": w.pid, "host": w.host, "ready": w.ready, "busy": bool(w.jobs),
                "jobs": len(w.jobs),
                "runtime": ", ".join(str(x) for x in w.extra.get("providers", [])) + (" int8" if w.extra.get("int8") else ""),
                "answered": w.answered, "rtt_ms": round(w.rtt_s * 1e3, 1) if w.answered else None,
                # batch: the most frames it runs at once; batch_mean: what its answered frames ran in
                "batch": w.batch, "batch_mean": round(w.batched / w.answered, 2) if w.answered else None,
            }
            for w in self._workers.values()
        ]

    def status(self) -> dict[str, Any]:
        """The model, the worker pool and what the hub did since it started (the admin's status page)."""
        s = self.stats
        counts = (
            "frames_submitted", "frames_analysed", "frames_inferred", "frames_gated", "frames_dropped",
            "frames_superseded_decoding",
            "jobs_retried", "jobs_lost", "jobs_failed", "flags_raised", "flags_delivered", "flags_failed",
            "frame_bytes_sent",
        )
        return {
            "model": self.config.model, "imgsz": self.config.imgsz, "precision": self.config.precision,
            "endpoint": self.endpoint, "local_workers": self.config.local_workers,
            "workers": self.workers(), "cameras": len(self._cameras), "cameras_waiting": len(self._ready),
            "counts": {name: getattr(s, name) for name in counts},
            "load": self.load_report(),
        }

    def load_report(self) -> dict[str, Any]:
        """Whether analytics keeps up, over the last `load_window_s` (see load.py)."""
        return self.load.report(self._cameras.keys(), ready_workers=sum(w.ready for w in self._workers.values()))

    def local_pids(self) -> list[int]:
        """Pids of the local worker processes."""
        return self._pool.pids() if self._pool else []

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the ROUTER, start the local workers and the hub's tasks."""
        if self._started:
            return
        self._started = True
        model_path = self.config.resolved_model_path(self.data_dir)
        if self.config.local_workers:
            if self._int8 and not model_path.is_file():
                raise ModelNotFoundError(
                    f"{model_path} does not exist and analytics.precision is int8: write it with `fusionhub models quantize`"
                )
            info = await asyncio.to_thread(read_model_info, model_path)
            if (info.name, info.imgsz) != (self.config.model, self.config.imgsz):
                raise ModelMismatchError(
                    f"{model_path} is {info.name} at {info.imgsz}px; config wants {self.config.model} at {self.config.imgsz}px"
                )
            if (info.precision == "int8") != self._int8:
                raise ModelMismatchError(
                    f"{model_path} is the {info.precision} model; analytics.precision is {self.config.precision}"
                    + ("; write its INT8 copy with `fusionhub models quantize`" if self._int8 else "")
                )
            if (stale := stale_int8_copy(model_path, info)) is not None:
                raise ModelMismatchError(stale)
        self.rule_env.model_classes = await asyncio.to_thread(model_classes, model_path)
        self._ctx = zmq.asyncio.Context()
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a vanished worker fails instead of vanishing
        # Transport heartbeats: a worker's ZeroMQ I/O thread answers them even in the middle of an
        # inference, so the connection of a worker whose machine froze or whose link died is closed
        # after worker_silence_s, busy or not (its job is then taken back, see _supervise).
        sock.setsockopt(zmq.HEARTBEAT_IVL, round(self.config.heartbeat_s * 1000))
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, round(self.config.worker_silence_s * 1000))
        self._sock = sock
        self._bind(sock)
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="analytics-receive"),
            asyncio.create_task(self._dispatch_loop(), name="analytics-dispatch"),
            asyncio.create_task(self._supervise_loop(), name="analytics-supervise"),
        ]
        self._emitter.start()
        if self.config.local_workers:
            base = WorkerConfig(
                connect=self.endpoint,
                model_path=model_path.resolve(),
                model_dir=model_path.resolve().parent,
                threads=self.config.worker_threads,
                providers=self.config.providers,
                # the OpenVINO arithmetic for the float parts; whether the INT8 copy loads, CONFIG says
                precision="auto" if self._int8 else self.config.precision,
                heartbeat_s=self.config.heartbeat_s,
                auto_choice=self._auto_choice(),
            )
            self._pool = LocalWorkers(
                self.config.local_workers, WorkerConfigFactory(base), backoff_s=self.config.restart_backoff_s
            )
            await self._pool.start()
        log.info("analytics hub on %s with %d local worker(s)", self.endpoint, self.config.local_workers)

    def _auto_choice(self) -> Path:
        """Where the local workers share their `auto` runtime choice: timed afresh once per hub start."""
        path = (self.data_dir / "run" / "analytics-auto-runtime.json").resolve()
        path.unlink(missing_ok=True)
        return path

    def _bind(self, sock: zmq.asyncio.Socket) -> None:
        if self.endpoint.startswith("ipc://"):
            path = Path(self.endpoint[len("ipc://") :])
            path.parent.mkdir(parents=True, exist_ok=True)
            if len(str(path).encode()) > 100:  # sockaddr_un holds 107 bytes
                raise AnalyticsError(f"ipc socket path {path} is too long; set analytics.bind to a shorter one")
            path.unlink(missing_ok=True)  # a stale socket file from a hub that was killed
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise AnalyticsError(f"cannot bind the analytics endpoint {self.endpoint}: {exc}") from exc

    async def stop(self) -> None:
        """Stop workers and tasks, deliver flags already raised, close the socket. Safe to call twice."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        errors: list[BaseException] = []
        if self._pool is not None:
            try:
                await self._pool.stop()
            except Exception as exc:  # collected; shutdown goes on
                errors.append(exc)
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        try:
            await self._emitter.stop()
        except Exception as exc:
            errors.append(exc)
        if self._sock is not None:
            self._sock.close(0)
        if self._ctx is not None:
            self._ctx.term()
        if self.endpoint.startswith("ipc://"):
            await asyncio.to_thread(Path(self.endpoint[len("ipc://") :]).unlink, missing_ok=True)
        for err in errors:
            log.error("analytics hub: error while stopping: %r", err)

    # -- ZeroMQ -----------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart()
            try:
                await self._on_message(frames)
            except asyncio.CancelledError:
                raise
            except WorkerProtocolError as exc:
                log.warning("analytics: bad message from a worker: %s", exc)
            except Exception:
                log.exception("analytics: error handling a worker message")

    async def _send(self, identity: bytes, cmd: bytes, body: dict[str, Any]) -> bool:
        assert self._sock is not None
        try:
            await self._sock.send_multipart([identity, cmd, p.dump(body)])
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the worker is gone
            log.debug("analytics: cannot send %r to a worker: %s", cmd, exc)
            return False
        return True

    async def _reachable(self, worker: _Worker) -> bool:
        """False once the hub cannot route to `worker`: its connection closed (process gone, link dead).

        The probe is a PONG, which a worker takes as a sign of life from the hub whenever it reads it.
        """
        assert self._sock is not None
        try:
            await self._sock.send_multipart([worker.identity, p.PONG, p.dump({})], flags=zmq.NOBLOCK)
        except zmq.Again:
            return True  # its queue is full: connected, just not reading (busy)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return False
            raise
        return True

    async def _on_message(self, frames: list[bytes]) -> None:
        if len(frames) < 3:
            raise WorkerProtocolError(f"{len(frames)}-part message")
        identity, cmd, body = frames[0], frames[1], p.load(frames[2])
        now = time.monotonic()
        if cmd == p.HELLO:
            await self._hello(identity, body, now)
            return
        worker = self._workers.get(identity)
        if worker is None:
            if cmd != p.BYE:
                await self._send(identity, p.RESET, {})
            return
        worker.last_seen = now
        if cmd == p.RESULT or cmd == p.ERROR:
            await self._finished(worker, body, ok=cmd == p.RESULT)
        elif cmd == p.PING:
            await self._send(identity, p.PONG, {})
        elif cmd == p.READY:
            if bool(body.get("int8")) != self._int8:  # a worker of an older release ignores CONFIG's int8
                # kept, never ready: it would only say hello again if it were forgotten
                worker.extra = body
                log.error("analytics worker %s loaded the %s model, this hub runs the %s one; it gets no frames",
                          worker.label, "INT8" if body.get("int8") else "float", "INT8" if self._int8 else "float")
                return
            if not any(w.ready for w in self._workers.values()):
                self.load.restart()  # what was superseded while no worker was ready says nothing of capacity
            worker.ready = True
            worker.extra = body
            self._workers_changed = True
            log.info("analytics worker %s ready: %s %spx%s on %s", worker.label, body.get("model"), body.get("imgsz"),
                     " INT8" if self._int8 else "", body.get("providers"))
            self._wake.set()
        elif cmd == p.FAIL:
            log.error("analytics worker %s cannot serve this hub: %s", worker.label, body.get("reason"))
            self._forget(worker, "refused")
        elif cmd == p.BYE:
            self._forget(worker, "left")
        else:
            raise WorkerProtocolError(f"unknown command {cmd[:16]!r}")

    async def _hello(self, identity: bytes, body: dict[str, Any], now: float) -> None:
        old = self._workers.get(identity)
        if old is not None:
            self._forget(old, "said hello again")
        label = f"{body.get('name', '?')}[{body.get('pid', '?')}]@{body.get('host', '?')}"
        pid = int(body.get("pid", -1))
        self._workers[identity] = _Worker(identity, label, pid, str(body.get("host", "")), now)
        log.info("analytics worker %s connected", label)
        config = {
            "model": self.config.model, "imgsz": self.config.imgsz, "conf": self.config.conf, "int8": self._int8,
            "batch": self.config.batch_max,
        }
        await self._send(identity, p.CONFIG, config)

    def _forget(self, worker: _Worker, why: str) -> None:
        self._workers.pop(worker.identity, None)
        self._workers_changed = True
        log.info("analytics worker %s forgotten (%s)", worker.label, why)
        for job in reversed(worker.jobs.values()):  # each goes to the front of the line: oldest ends up first
            self._release(job)
        worker.jobs.clear()

    def _release(self, job: _Job) -> None:
        """A job that will not be answered: retry its frame unless a newer one is waiting."""
        cam = self._cameras.get(job.camera_id)
        if cam is None:
            return
        cam.busy = False
        if cam.pending is None and job.item.attempts < MAX_ATTEMPTS:
            cam.pending = job.item
            self.stats.jobs_retried += 1
        else:
            self.stats.jobs_lost += 1
            self.load.superseded(job.camera_id)
        if cam.pending is not None:
            self._ready[job.camera_id] = None
            self._ready.move_to_end(job.camera_id, last=False)  # it already waited its turn
        self._wake.set()

    # -- dispatch ---------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (picked := self._next_camera()) is not None:
                camera_id, cam = picked
                item = cam.pending
                assert item is not None
                still, item.thumb = cam.gate.still(item.ts, item.frame, item.thumb)
                if still and cam.latest is not None:
                    # the picture did not change since the last analysed frame: same detections
                    cam.pending = None
                    self.stats.frames_gated += 1
                    await self._apply(camera_id, cam, item, cam.latest.detections)
                    continue
                worker = self._free_worker()
                if worker is None:
                    self._ready[camera_id] = None
                    self._ready.move_to_end(camera_id, last=False)  # first in line when a worker frees
                    break
                cam.pending = None
                cam.busy = True
                item.attempts += 1
                # a fixed-shape model runs at its own size only (its worker says so in READY)
                imgsz = cam.imgsz if worker.extra.get("dynamic") else None
                # the worker gets the frame at the size its model takes it (the hub's imgsz, which every
                # worker loads, or the camera's): the same pixels reach the model, for a quarter of the
                # bytes at 320; the hub keeps the whole frame for the rules and the evidence
                size = imgsz if imgsz is not None else self.config.imgsz
                sent = np.ascontiguousarray(shrunk_for_model(item.frame, size))
                now = time.monotonic()
                job = _Job(next(self._job_ids), camera_id, item, now, (sent.shape[1], sent.shape[0]), now)
                worker.jobs[job.id] = job
                worker.last_job_at = now
                self.stats.frame_bytes_sent += sent.nbytes
                header = p.job_header(job.id, camera_id, item.ts, sent, imgsz=imgsz)
                if not await self._send_job(worker, header, sent):
                    self._forget(worker, "unreachable")

    async def _send_job(self, worker: _Worker, header: bytes, frame: np.ndarray) -> bool:
        assert self._sock is not None
        try:
            await self._sock.send_multipart([worker.identity, p.JOB, header, frame.data], copy=False)
        except zmq.ZMQError as exc:
            log.debug("analytics: cannot send a job to %s: %s", worker.label, exc)
            return False
        return True

    def _free_worker(self) -> _Worker | None:
        free = [w for w in self._workers.values() if w.ready and len(w.jobs) < w.depth(self.config)]
        # an idle worker first, then the one holding fewest; least recently used among equals, so
        # every worker shares the load
        return min(free, key=lambda w: (len(w.jobs), w.last_job_at)) if free else None

    def _next_camera(self) -> tuple[int, _Camera] | None:
        """The camera waiting longest with a frame and nothing in flight (one job per camera keeps results in order)."""
        while self._ready:
            camera_id, _ = self._ready.popitem(last=False)
            cam = self._cameras.get(camera_id)
            if cam is not None and cam.pending is not None and not cam.busy:
                return camera_id, cam
        return None

    async def _finished(self, worker: _Worker, body: dict[str, Any], *, ok: bool) -> None:
        job_id = body.get("job_id")
        job = worker.jobs.pop(job_id, None) if isinstance(job_id, int) else None
        if job is None:
            return  # an answer to a job already given up
        # A worker answers its jobs in the order it got them: older ones it still holds lost their
        # answers on the way (an older release drops them when its connection is full). Given up
        # now, their frames go again; else each would wait for a time-out that never comes, since
        # every later answer restarts the oldest job's clock, and its camera would go unanalysed.
        # (jobs are held oldest first: only the front is looked at, once an answer in the common case)
        skipped: list[_Job] = []
        while (oldest := worker.current) is not None and oldest.id < job.id:
            skipped.append(worker.jobs.pop(oldest.id))
        if skipped:
            log.warning("analytics worker %s answered job %d but not %s before it; their frames go again",
                        worker.label, job.id, ", ".join(str(held.id) for held in skipped))
            for held in skipped:
                self._release(held)
        now = time.monotonic()
        rtt = now - job.started_at
        if (following := worker.current) is not None:
            following.started_at = max(following.started_at, now)  # it waited in the worker's queue till now
        worker.rtt_s = rtt if worker.answered == 0 else 0.8 * worker.rtt_s + 0.2 * rtt
        worker.answered += 1
        timings = body.get("timings")
        timings = timings if isinstance(timings, dict) else {}
        batch = p.batch_size(timings.get("batch"))
        worker.batched += batch
        self._wake.set()
        cam = self._cameras.get(job.camera_id)
        if cam is None:
            return
        cam.busy = False
        self._queue(job.camera_id, cam)  # a frame that came in meanwhile gets in line
        if not ok:
            self.stats.jobs_failed += 1
            self.load.failed(job.camera_id)
            return
        try:
            dets = tuple(Detection.from_json(d) for d in body["detections"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkerProtocolError(f"bad RESULT from {worker.label}: {exc}") from exc
        height, width = job.item.frame.shape[:2]
        if job.sent_size != (width, height):  # boxes in the shrunk frame's pixels: back to the sample's
            fx, fy = width / job.sent_size[0], height / job.sent_size[1]
            dets = tuple(d.scaled(fx, fy) for d in dets)
        self.stats.inferred(worker.label, timings, rtt, batch)
        cam.gate.analysed(job.item.ts, job.item.frame, job.item.thumb)
        await self._apply(job.camera_id, cam, job.item, dets)

    async def _apply(self, camera_id: int, cam: _Camera, item: _Frame, dets: tuple[Detection, ...]) -> None:
        """Run the rules on an analysed (or gated) frame and queue the flags it raises."""
        frame = item.frame
        t0 = time.perf_counter()
        flags = cam.rules.update(item.ts, dets, frame.shape[1], frame.shape[0], frame)
        rules_ms = (time.perf_counter() - t0) * 1e3
        age = time.time() - item.ts
        self.stats.analysed(camera_id, rules_ms, age, item.ts)
        self.load.analysed(camera_id, age)
        cam.latest = AnalysedFrame(item.ts, frame, dets)
        for flag in flags:
            self.stats.flags_raised += 1
            log.info(
                "camera %d: %s #%s in zone %r for %.1f s: flag", camera_id, flag.detection.label,
                flag.track_id, flag.zone.name, flag.ts - flag.first_seen_at,
            )
            flag_id = str(uuid.uuid4())
            cam.rules.remember(flag_id, flag)
            await self._emitter.put(FlagWork(flag, frame, flag_id))
        for seen in cam.rules.sightings:
            self.stats.sightings += 1
            if self._on_sighting is None:
                continue
            try:
                await self._on_sighting(build_sighting(seen))
            except asyncio.CancelledError:
                raise
            except Exception:  # a sighting is a note, not a record: the next one comes in sighting_s
                log.warning("camera %d: sighting in zone %r not delivered", camera_id, seen.zone.name, exc_info=True)

    # -- supervision ------------------------------------------------------------------------

    async def _supervise_loop(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_S)
            try:
                await self._supervise()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("analytics: supervision step failed")

    async def _supervise(self) -> None:
        now = time.monotonic()
        if self._pool is not None:
            for pid in await self._pool.check():
                for w in [w for w in self._workers.values() if w.pid == pid and w.host == self._host]:
                    self._forget(w, "process died")
        for w in list(self._workers.values()):
            # a busy worker does not ping: its connection and the job timeout watch it instead
            job = w.current
            if job is None and now - w.last_seen > self.config.worker_silence_s:
                self._forget(w, f"silent for {now - w.last_seen:.1f} s")
            elif job is not None and now - job.started_at > max(SUPERVISE_S, w.rtt_s) and not await self._reachable(w):
                # killed (kill -9, OOM) or cut off: its jobs go to another worker now, not after the timeout
                self._forget(w, "connection closed")
            elif job is not None and now - job.started_at > w.timeout_s(self.config):
                log.warning("analytics worker %s did not answer job %d in time", w.label, job.id)
                self._forget(w, "job timed out")
                await self._send(w.identity, p.RESET, {})  # alive but slow: it may say hello again
        await self._tell_load(now)

    async def _tell_load(self, now: float) -> None:
        """Judges the load every CHECK_S, and at once when a worker got ready or went (the last one
        may have gone); a verdict that changed goes to `on_load` (the consoles' banners)."""
        report = self._load_watch.tick(now, force=self._workers_changed)
        self._workers_changed = False
        if report is None or self._on_load is None:
            return
        log.debug("analytics load verdict: %s %s", report["state"], report["reasons"])
        try:
            await self._on_load(AnalyticsLoad(state=report["state"], reasons=report["reasons"], at=time.time()))
        except Exception as exc:  # consoles learn it at their next reconnect or reload
            log.warning("analytics: could not tell the consoles that analytics is %s: %s", report["state"], exc)
