"""Inference runtimes for the detector: ONNX Runtime (CPU, CUDA) and OpenVINO, chosen by config.

A worker asks for runtimes in order of preference (`["openvino", "cpu"]`, say); the first one
this machine can run is used. A runtime that is asked for first but missing is reported once,
as a warning naming what was used instead, so a misconfigured GPU box never silently runs on CPU.
`auto` takes CUDA where it works, and otherwise times ONNX Runtime and OpenVINO on this model at
start-up and keeps the one that costs less CPU per frame: which one wins depends on the CPU.

Measured on the 2-core development box (yolo26n, one thread, CPU time per frame): ONNX Runtime
7.4 ms at 320×320, OpenVINO 4.6 ms; with a dynamic-shape export and the rectangular input a
16:9 frame needs (320×192), 4.6 ms and 2.9 ms. On a later 2-core AMD EPYC box (bfloat16):
5.9 ms and 4.5 ms at 320×192. Which one wins is the CPU's business; `auto` measures it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fusionhub.analytics.errors import DetectorError

log = logging.getLogger(__name__)

RUNTIMES = ("cpu", "cuda", "openvino")
AUTO = "auto"  # CUDA where usable, else the CPU runtime that costs less CPU per frame here
_ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "openvino": "OpenVINOExecutionProvider"}
# OpenVINO compiles one graph per input shape (about 0.3 s each on a small CPU); a hub sees a handful:
# one per aspect ratio and size, each in batches of 1 to analytics.batch_max (4) frames
_OV_SHAPES = 16
# `auto`'s timing at start-up: a warm-up (OpenVINO compiles on its first run), then rounds that
# take turns between the runtimes, so that a burst of load elsewhere on the box hits both alike;
# each runtime's best round counts (load only ever adds to a round: the least loaded is the truest)
_PROBE_WARMUP, _PROBE_ROUNDS, _PROBE_RUNS = 2, 6, 3
# a pool's later workers wait this long for the first one's timing (it takes seconds) before timing themselves
_SHARED_WAIT_S = 120.0


class Backend(Protocol):
    """One loaded model on one runtime: NCHW float32 blob in, raw model output out."""

    name: str  # e.g. "openvino/CPU" or "onnxruntime/CUDAExecutionProvider" (shown in logs and READY)
    dynamic: bool  # True: any input height/width (multiples of 32); False: the fixed input shape only
    input_shape: tuple[int | None, ...]  # None where the dimension is free

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Run the model on a (1, 3, H, W) blob; returns the first output."""
        ...


def _openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def available_runtimes() -> list[str]:
    """The runtimes this machine can run, from `RUNTIMES`."""
    import onnxruntime as ort

    ort_have = set(ort.get_available_providers())
    out = ["cpu"]
    if _ORT_PROVIDERS["cuda"] in ort_have:
        out.append("cuda")
    if _openvino_installed() or _ORT_PROVIDERS["openvino"] in ort_have:
        out.append("openvino")
    return out


class OrtBackend:
    """ONNX Runtime with one execution provider (CPU always behind it as a fallback)."""

    def __init__(self, model_path: Path, *, threads: int, provider: str) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # spinning threads would burn CPU between ~1 Hz samples on a machine shared with the hub
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own untyped errors for corrupt files
            raise DetectorError(f"cannot load model {model_path}: {exc}") from exc
        if provider not in self._session.get_providers():  # e.g. CUDA built in but no GPU or driver
            raise DetectorError(f"{provider} is not usable on this machine")
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape)
        self.dynamic = self.input_shape[2] is None and self.input_shape[3] is None
        self.name = f"onnxruntime/{self._session.get_providers()[0]}"

    def run(self, blob: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self._session.run(None, {self._input: blob})[0])
        except Exception as exc:
            raise DetectorError(f"inference failed: {exc}") from exc


class OpenVinoBackend:
    """OpenVINO on the CPU; a dynamic model is compiled once per input shape (static graphs run faster)."""

    def __init__(self, model_path: Path, *, threads: int, precision: str = "auto", device: str = "CPU") -> None:
        import openvino as ov

        self._core = ov.Core()
        self._device = device
        self._threads = threads
        self._precision = precision
        try:
            self._model = self._core.read_model(str(model_path))
        except Exception as exc:  # OpenVINO raises RuntimeError for unreadable files
            raise DetectorError(f"cannot load model {model_path}: {exc}") from exc
        shape = self._model.inputs[0].partial_shape
        self.input_shape = tuple(None if d.is_dynamic else int(d.get_length()) for d in shape)
        self.dynamic = self.input_shape[2] is None and self.input_shape[3] is None
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        if not self.dynamic:
            self._compile(tuple(int(d or 1) for d in self.input_shape))  # fail at load, not on the first frame
        hint = self._core.get_property(device, "INFERENCE_PRECISION_HINT") if precision != "f32" else "f32"
        precision_used = hint if isinstance(hint, str) else str(getattr(hint, "get_type_name", lambda: hint)())
        self.name = f"openvino/{device}/{precision_used}"

    def _compile(self, shape: tuple[int, ...]) -> Any:
        compiled = self._compiled.get(shape)
        if compiled is not None:
            self._compiled.move_to_end(shape)
            return compiled
        model = self._model.clone()
        if self.dynamic or any(d is None for d in self.input_shape):
            model.reshape({model.inputs[0]: list(shape)})
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": self._threads,
            "PERFORMANCE_HINT": "LATENCY",
            # OpenVINO's default on Linux pins the threads it infers on, each process choosing its
            # cores for itself; a worker must be free to run on whichever core is idle (on the
            # capacity bench both workers were found tied to core 0, the box's other core left over)
            "ENABLE_CPU_PINNING": False,
        }
        if self._precision == "f32":
            # by default OpenVINO runs bfloat16 on CPUs that have it: ~1.7x faster, scores within a few points
            config["INFERENCE_PRECISION_HINT"] = "f32"
        try:
            compiled = self._core.compile_model(model, self._device, config)
        except Exception as exc:
            raise DetectorError(f"OpenVINO cannot compile the model for input {shape}: {exc}") from exc
        request = compiled.create_infer_request()
        self._compiled[shape] = request
        while len(self._compiled) > _OV_SHAPES:
            self._compiled.popitem(last=False)
        return request

    def run(self, blob: np.ndarray) -> np.ndarray:
        request = self._compile(tuple(blob.shape))
        try:
            request.infer({0: blob})
            return np.array(request.get_output_tensor(0).data)  # copied: the request reuses its buffer
        except Exception as exc:
            raise DetectorError(f"inference failed: {exc}") from exc


def load_backend(
    model_path: Path,
    *,
    wanted: Sequence[str],
    threads: int,
    precision: str = "auto",
    prefix: str = "detector",
    imgsz: int = 640,
    shared_choice: Path | None = None,
) -> Backend:
    """The first runtime in `wanted` that this machine has; ONNX Runtime on the CPU when none is.

    A preferred runtime that is missing (or fails to load the model) is logged once as a warning
    with what runs instead. `auto` (see `_cheapest`) times the CPU runtimes at `imgsz`; with
    `shared_choice`, only the first worker of a pool does, and the others take its choice.
    """
    import onnxruntime as ort

    ort_have = set(ort.get_available_providers())
    missing: list[str] = []
    backend: Backend
    for choice in [*wanted, "cpu"]:
        try:
            if choice == AUTO:
                backend = _cheapest(
                    model_path, ort_have, threads=threads, precision=precision, imgsz=imgsz, prefix=prefix,
                    shared_choice=shared_choice,
                )
            elif choice == "openvino" and _openvino_installed():
                backend = OpenVinoBackend(model_path, threads=threads, precision=precision)
            elif choice in _ORT_PROVIDERS and _ORT_PROVIDERS[choice] in ort_have:
                backend = OrtBackend(model_path, threads=threads, provider=_ORT_PROVIDERS[choice])
            else:
                missing.append(f"{choice} (not installed here)")
                continue
        except DetectorError as exc:
            if choice == "cpu":
                raise
            missing.append(f"{choice} ({exc})")
            continue
        if missing:
            log.warning("%s: runtime %s unavailable; falling back to %s", prefix, ", ".join(missing), backend.name)
        return backend
    raise DetectorError("no inference runtime could load the model")  # unreachable: cpu is always there


def probe_shape(backend: Backend, imgsz: int) -> tuple[int, int, int, int]:
    """The input a camera frame gets: a fixed model's own shape, or a 16:9 frame's rectangle at `imgsz`."""
    if not backend.dynamic:
        return (1, 3, int(backend.input_shape[2] or imgsz), int(backend.input_shape[3] or imgsz))
    return (1, 3, max(32, math.ceil(imgsz * 9 / 16 / 32) * 32), imgsz)


def _probe_blob(backend: Backend, imgsz: int) -> np.ndarray:
    return np.random.default_rng(0).random(probe_shape(backend, imgsz), dtype=np.float32)


def cpu_ms_per_frame(backends: Sequence[Backend], imgsz: int) -> list[float]:
    """CPU time per inference of each backend (all of this process's threads), in its best round."""
    blobs = [_probe_blob(b, imgsz) for b in backends]
    for backend, blob in zip(backends, blobs, strict=True):
        for _ in range(_PROBE_WARMUP):
            backend.run(blob)
    rounds: list[list[float]] = [[] for _ in backends]
    for _ in range(_PROBE_ROUNDS):
        for i, (backend, blob) in enumerate(zip(backends, blobs, strict=True)):
            started = time.process_time()
            for _ in range(_PROBE_RUNS):
                backend.run(blob)
            rounds[i].append((time.process_time() - started) / _PROBE_RUNS * 1e3)
    return [min(r) for r in rounds]


def _cheapest(
    model_path: Path, ort_have: set[str], *, threads: int, precision: str, imgsz: int, prefix: str,
    shared_choice: Path | None = None,
) -> Backend:
    """`auto`: CUDA when it loads; else whichever of ONNX Runtime and OpenVINO costs less CPU per
    frame for this model on this machine, timed now (20 runs each) and logged.

    With `shared_choice` (a file the workers of one pool share), the first worker times and writes
    its choice there while the others wait, and they take it: workers started together would time
    each other's load and might choose differently, and a worker replaced under full load would
    time the load more than the runtimes.
    """
    if _ORT_PROVIDERS["cuda"] in ort_have:
        try:
            return OrtBackend(model_path, threads=threads, provider=_ORT_PROVIDERS["cuda"])
        except DetectorError as exc:
            log.info("%s: auto: CUDA not usable here (%s); timing the CPU runtimes", prefix, exc)
    if shared_choice is None:
        return _timed_choice(model_path, threads=threads, precision=precision, imgsz=imgsz, prefix=prefix)
    st = model_path.stat()
    key = f"{model_path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{imgsz}:{threads}:{precision}"
    with _exclusive(shared_choice):
        kept = _read_choice(shared_choice, key)
        if kept is not None:
            try:
                backend: Backend = (
                    OpenVinoBackend(model_path, threads=threads, precision=precision) if kept == "openvino"
                    else OrtBackend(model_path, threads=threads, provider=_ORT_PROVIDERS["cpu"])
                )
            except DetectorError as exc:
                log.warning("%s: auto: the pool's choice %s does not load here (%s); timing again", prefix, kept, exc)
            else:
                log.info("%s: auto: %s, as the pool's first worker timed it (%s)", prefix, backend.name, shared_choice)
                return backend
        backend = _timed_choice(model_path, threads=threads, precision=precision, imgsz=imgsz, prefix=prefix)
        _write_choice(shared_choice, key, "openvino" if isinstance(backend, OpenVinoBackend) else "cpu")
        return backend


@contextlib.contextmanager
def _exclusive(path: Path, wait_s: float = _SHARED_WAIT_S) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (released by the kernel if the holder dies). Without
    one (a read-only directory, or a holder stuck for `wait_s`) the caller goes on unshared."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.debug("auto runtime: no lock beside %s (%s)", path, exc)
        yield
        return
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("auto runtime: another worker has been timing for %.0f s; timing here too", wait_s)
                    break
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_choice(path: Path, key: str) -> str | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    runtime = raw.get("runtime") if isinstance(raw, dict) and raw.get("key") == key else None
    return runtime if runtime in ("cpu", "openvino") else None


def _write_choice(path: Path, key: str, runtime: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"key": key, "runtime": runtime, "timed_at": time.time()}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # the next worker times for itself
        log.debug("auto runtime: choice not written to %s (%s)", path, exc)


def _timed_choice(model_path: Path, *, threads: int, precision: str, imgsz: int, prefix: str) -> Backend:
    """Time ONNX Runtime and OpenVINO (when installed) on this model; the one costing less CPU per frame."""
    candidates: list[Backend] = [OrtBackend(model_path, threads=threads, provider=_ORT_PROVIDERS["cpu"])]
    if _openvino_installed():
        try:
            openvino = OpenVinoBackend(model_path, threads=threads, precision=precision)
            openvino.run(_probe_blob(openvino, imgsz))  # a shape it cannot compile fails here, not mid-timing
            candidates.append(openvino)
        except DetectorError as exc:
            log.warning("%s: auto: OpenVINO cannot run this model (%s)", prefix, exc)
    if len(candidates) == 1:
        log.info("%s: auto: only %s is installed", prefix, candidates[0].name)
        return candidates[0]
    costs = cpu_ms_per_frame(candidates, imgsz)
    best = min(range(len(candidates)), key=costs.__getitem__)
    shape = "x".join(str(d) for d in probe_shape(candidates[best], imgsz)[2:])
    log.info(
        "%s: auto: CPU per frame at %s: %s; using %s", prefix, shape,
        ", ".join(f"{b.name} {c:.1f} ms" for b, c in zip(candidates, costs, strict=True)), candidates[best].name,
    )
    return candidates[best]
