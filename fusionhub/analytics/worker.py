"""An analytics worker: one OS process, a DEALER socket to the hub, YOLO on ONNX Runtime.

Stateless: it serves whichever camera's frame the hub sends, so any number of workers on any
machine can serve a hub. Local workers are started by the hub; remote ones with
`fusionhub worker --connect tcp://HUB:PORT`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import zmq

from fusionhub.analytics import protocol as p
from fusionhub.analytics.config import WorkerConfig, model_file
from fusionhub.analytics.errors import AnalyticsError, WorkerProtocolError
from fusionhub.analytics.models import read_model_info, stale_int8_copy
from fusionhub.memory import keep_freed_memory

log = logging.getLogger(__name__)

POLL_MS = 200  # how often the loop looks at the stop event while idle
OUTBOX_POLL_MS = 5  # how often it tries again to send answers the hub's connection could not take yet
# Answers the worker keeps until its connection takes them: as many jobs as a hub ever gives one
# worker (jobs_per_worker x batch, at most 8 x 16). Older ones would be answers to jobs given up.
OUTBOX_MAX = 8 * p.MAX_BATCH
# Messages its connection queues before a send would block: a whole batch of answers and the next
# go out at once, yet heartbeats do not pile up while the hub is away.
SNDHWM = 2 * p.MAX_BATCH + 2
EXIT_OK = 0
EXIT_REFUSED = 2  # the hub wants a model this worker cannot load


class StopEvent(Protocol):
    """threading.Event or multiprocessing.Event."""

    def is_set(self) -> bool: ...


class _Session:
    """The worker's side of the conversation with one hub."""

    def __init__(self, config: WorkerConfig, sock: zmq.Socket[bytes]) -> None:
        self.config = config
        self.sock = sock
        self.detector: Any = None  # Detector, imported lazily so `--help` stays fast
        self.batch = 1  # most frames run through the model at once (the hub's CONFIG says; 1 if the model cannot)
        self.last_sent = 0.0
        self.last_heard = time.monotonic()
        self.prefix = f"worker {config.name}[{os.getpid()}]"
        # RESULTs and ERRORs the connection could not take yet, oldest first: an answer is never
        # dropped for a moment's back-pressure (its job would wait for a time-out), and answers keep
        # their order, which the hub relies on
        self.outbox: deque[list[bytes]] = deque()

    def send(self, cmd: bytes, body: dict[str, Any]) -> None:
        """Never blocks. Answers wait in the outbox while the connection is full; a heartbeat or a
        hello is dropped (the next one follows; with the hub away, a hang is worth nothing)."""
        message = [cmd, p.dump(body)]
        if cmd in (p.RESULT, p.ERROR):
            if len(self.outbox) >= OUTBOX_MAX:
                self.outbox.popleft()
                log.warning("%s: the hub has not taken %d answers; the oldest is dropped", self.prefix, OUTBOX_MAX)
            self.outbox.append(message)
            self.flush()
        else:
            try:
                self.sock.send_multipart(message, flags=zmq.NOBLOCK)
            except zmq.Again:
                log.debug("%s: hub not reachable; %r dropped", self.prefix, cmd)
        self.last_sent = time.monotonic()

    def flush(self) -> None:
        """Hands the connection the answers waiting in the outbox, in order, as far as it takes them."""
        while self.outbox:
            try:
                self.sock.send_multipart(self.outbox[0], flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            self.outbox.popleft()

    def hello(self) -> None:
        # a hub that forgot us gave up the jobs those answers are for
        self.outbox.clear()
        self.send(p.HELLO, {"pid": os.getpid(), "host": socket.gethostname(), "name": self.config.name})

    def handle_all(self, messages: list[list[bytes]]) -> int | None:
        """Act on messages from the hub, in order (JOBs that come one after another run as one batch);
        an int is the exit status when the worker must stop."""
        self.last_heard = time.monotonic()
        jobs: list[tuple[bytes, bytes]] = []
        for frames in messages:
            cmd = frames[0]
            if cmd == p.JOB and len(frames) == 3:
                jobs.append((frames[1], frames[2]))
                continue
            if jobs:
                self._jobs(jobs)
                jobs = []
            if cmd == p.CONFIG and len(frames) >= 2:
                try:
                    body = p.load(frames[1])
                except WorkerProtocolError as exc:
                    log.warning("%s: %s", self.prefix, exc)
                    continue
                if (status := self._configure(body)) is not None:
                    return status
            elif cmd == p.RESET:
                log.info("%s: hub does not know us (restarted?); saying hello again", self.prefix)
                self.hello()
            elif cmd != p.PONG:
                log.warning("%s: unexpected message %r from the hub", self.prefix, cmd[:16])
        if jobs:
            self._jobs(jobs)
        return None

    def _configure(self, body: dict[str, Any]) -> int | None:
        from fusionhub.analytics.detector import Detector

        try:
            name, imgsz, conf = str(body["model"]), int(body["imgsz"]), float(body["conf"])
            int8 = bool(body.get("int8", False))
            batch = p.batch_size(body.get("batch"))
        except (KeyError, TypeError, ValueError):
            self.send(p.FAIL, {"reason": "bad CONFIG message"})
            return EXIT_REFUSED
        path = self.config.model_path or self.config.model_dir / model_file(name, imgsz, int8=int8)
        try:
            if int8 and not path.is_file():
                raise AnalyticsError(f"hub runs the INT8 model and {path} does not exist: copy the hub's, or run "
                                     "`fusionhub models quantize` here")
            info = read_model_info(path)
            if (info.name, info.imgsz) != (name, imgsz):
                raise AnalyticsError(
                    f"hub expects model {name} at {imgsz}px, {path} is {info.name} at {info.imgsz}px"
                )
            if (info.precision == "int8") != int8:
                raise AnalyticsError(f"hub runs the {'INT8' if int8 else 'float'} model, {path} is {info.precision}")
            if (stale := stale_int8_copy(path, info)) is not None:
                raise AnalyticsError(stale)
            if self.detector is None or (self.detector.name, self.detector.imgsz, self.detector.precision) != (
                name, imgsz, info.precision
            ):
                self.detector = Detector(
                    path, threads=self.config.threads, conf=conf, providers=self.config.providers,
                    precision=self.config.precision, shared_choice=self.config.auto_choice,
                )
            self.detector.conf = conf
            self.batch = self.detector.warm(imgsz, batch)
        except AnalyticsError as exc:
            log.error("%s: cannot serve this hub: %s", self.prefix, exc)
            self.send(p.FAIL, {"reason": str(exc)})
            return EXIT_REFUSED
        log.info("%s: model %s %dpx on %s, up to %d frames at once, ready", self.prefix, name, imgsz,
                 self.detector.providers, self.batch)
        self.send(
            p.READY,
            {
                "model": name, "imgsz": imgsz, "providers": list(self.detector.providers),
                "dynamic": self.detector.dynamic, "int8": self.detector.precision == "int8", "batch": self.batch,
            },
        )
        return None

    def _jobs(self, jobs: list[tuple[bytes, bytes]]) -> None:
        """Run the frames of these JOBs (through the model together where they can) and answer each."""
        ids: list[Any] = []
        failed: dict[int, str] = {}
        runnable: list[int] = []
        frames: list[tuple[Any, int | None]] = []
        for i, (raw_header, pixels) in enumerate(jobs):
            job_id = None
            try:
                header = p.load(raw_header)
                job_id = header.get("job_id")
                if self.detector is None:
                    raise WorkerProtocolError("job before CONFIG")
                frame = p.frame_from(header, pixels)
            except AnalyticsError as exc:
                failed[i] = str(exc)
            else:
                size = header.get("imgsz")
                runnable.append(i)
                frames.append((frame, size if isinstance(size, int) else None))
            ids.append(job_id)
        results = self.detector.detect_many(frames, max_batch=self.batch) if frames else []
        outcome: dict[int, Any] = dict(zip(runnable, results, strict=True))
        for i, job_id in enumerate(ids):
            result = outcome.get(i)
            if result is None or isinstance(result, AnalyticsError):
                reason = failed.get(i) or str(result)
                log.warning("%s: job %s failed: %s", self.prefix, job_id, reason)
                self.send(p.ERROR, {"job_id": job_id, "reason": reason})
                continue
            dets, t = result
            self.send(
                p.RESULT,
                {
                    "job_id": job_id,
                    "detections": [d.to_json() for d in dets],
                    "timings": {
                        "letterbox_ms": t.letterbox_ms, "inference_ms": t.inference_ms,
                        "postprocess_ms": t.postprocess_ms, "letterbox_cpu_ms": t.letterbox_cpu_ms,
                        "inference_cpu_ms": t.inference_cpu_ms, "postprocess_cpu_ms": t.postprocess_cpu_ms,
                        "batch": t.batch,
                    },
                },
            )

    def idle(self) -> None:
        now = time.monotonic()
        if now - self.last_heard > self.config.hub_silence_s:
            # the hub may have restarted and forgotten us, or never got our hello
            self.last_heard = now
            self.hello()
        elif now - self.last_sent >= self.config.heartbeat_s:
            self.send(p.PING, {})


def worker_main(config: WorkerConfig, stop_event: StopEvent, *, parent_pid: int | None = None) -> int:
    """Serve the hub at `config.connect` until `stop_event` is set (or the parent process dies)."""
    keep_freed_memory()  # every frame, blob and message is the size of the last one: reuse the pages
    ctx = zmq.Context()
    sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, SNDHWM)
    session = _Session(config, sock)
    try:
        sock.connect(config.connect)
        session.hello()
        while not stop_event.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("%s: the hub process is gone; exiting", session.prefix)
                return EXIT_OK
            session.flush()
            if sock.poll(OUTBOX_POLL_MS if session.outbox else POLL_MS, zmq.POLLIN):
                messages = [sock.recv_multipart()]
                # frames that are already waiting run together; a batch never waits to fill
                while (
                    session.batch > 1 and len(messages) < session.batch and messages[-1][0] == p.JOB
                    and sock.poll(0, zmq.POLLIN)
                ):
                    messages.append(sock.recv_multipart())
                try:
                    status = session.handle_all(messages)
                except WorkerProtocolError as exc:
                    log.warning("%s: %s", session.prefix, exc)
                    continue
                if status is not None:
                    return status
            else:
                session.idle()
        try:
            sock.send_multipart([p.BYE, p.dump({})], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
        return EXIT_OK
    finally:
        sock.close(0)
        ctx.term()


def worker_process(
    config: WorkerConfig, stop_event: StopEvent, parent_pid: int, log_level: int, cpus: frozenset[int] | None = None
) -> None:
    """Entry point of a local worker child process (spawned by the hub); `cpus`: the hub's CPUs, which it runs on."""
    if cpus and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cpus)  # not the one core a pinned thread of the hub's may have handed down
        except OSError as exc:
            log.warning("cannot run on CPUs %s: %s", sorted(cpus), exc)
    # Ctrl-C reaches the whole process group; the hub decides when its workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(worker_main(config, stop_event, parent_pid=parent_pid))


def run_worker(
    connect: str,
    model_path: Path | None = None,
    *,
    threads: int = 2,
    model_dir: Path | None = None,
    providers: list[str] | None = None,
    precision: str = "auto",
    name: str | None = None,
    processes: int = 1,
) -> int:
    """Run a worker (the `fusionhub worker` CLI) until SIGINT/SIGTERM; returns the exit status.

    With no `model_path`, the model the hub names is looked up in `model_dir` (default ./var/models).
    With `processes` > 1 this process supervises that many worker processes and replaces any that dies.
    """
    config = WorkerConfig.model_validate(
        {
            "connect": connect,
            "model_path": model_path,
            "model_dir": model_dir or Path("var") / "models",
            "threads": threads,
            "providers": providers or ["cpu"],
            "precision": precision,
            "name": name or socket.gethostname(),
        }
    )
    if processes > 1:
        return _run_pool(config, processes)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    log.info("worker %s connecting to %s", config.name, connect)
    return worker_main(config, stop)


def _run_pool(config: WorkerConfig, processes: int) -> int:
    import asyncio

    from fusionhub.analytics.pool import serve_pool  # pool imports this module

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker pool %s: %d processes connecting to %s", config.name, processes, config.connect)
        await serve_pool(config, processes, stop)

    asyncio.run(main())
    return EXIT_OK
