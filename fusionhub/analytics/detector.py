"""YOLO on ONNX Runtime or OpenVINO: letterbox, inference, decode (NMS-free end2end export). No torch here."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fusionhub.analytics.detection import Detection
from fusionhub.analytics.errors import DetectorError
from fusionhub.analytics.models import read_model_info
from fusionhub.analytics.runtime import load_backend, probe_shape

log = logging.getLogger(__name__)

PAD_VALUE = 114  # the grey Ultralytics trains its letterbox with
STRIDE = 32  # a dynamic-shape model takes any input whose sides are multiples of this


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each stage of one detection."""

    letterbox_ms: float
    inference_ms: float
    postprocess_ms: float
    # CPU time of the whole process during each stage (all runtime threads), for capacity planning
    letterbox_cpu_ms: float = 0.0
    inference_cpu_ms: float = 0.0
    postprocess_cpu_ms: float = 0.0
    batch: int = 1  # frames that went through the model together; inference times are this frame's share


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square model input."""

    scale: float
    pad_x: int
    pad_y: int


def fitted(width: int, height: int, size: int) -> tuple[float, int, int]:
    """How a width×height frame fits a `size` model input keeping its aspect: the scale and the scaled sides."""
    scale = min(size / height, size / width)
    return scale, max(1, round(width * scale)), max(1, round(height * scale))


def shrunk_for_model(frame: np.ndarray, size: int) -> np.ndarray:
    """The frame scaled down as `letterbox(frame, size)` scales it, or the frame itself where it is not
    larger than that. Letterboxing the result at `size` scales nothing more, so the model gets the
    same pixels; the hub sends a worker this instead of the whole sample (a quarter of the bytes for
    a 640-wide sample at 320)."""
    h, w = frame.shape[:2]
    scale, nw, nh = fitted(w, h, size)
    if scale >= 1.0 or (nw, nh) == (w, h):
        return frame
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)


def letterbox(frame: np.ndarray, size: int, *, rect: bool = False) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, pad with grey, return NCHW float32 RGB 0–1.

    Square size×size by default; with `rect` the short side is padded only up to a multiple of
    STRIDE (a 16:9 frame at 320 becomes 320×192: 40 % less work for a dynamic-shape model).
    """
    h, w = frame.shape[:2]
    scale, nw, nh = fitted(w, h, size)
    cw, ch = (size, size) if not rect else (-(-nw // STRIDE) * STRIDE, -(-nh // STRIDE) * STRIDE)
    canvas = np.full((ch, cw, 3), PAD_VALUE, dtype=np.uint8)
    pad_x, pad_y = (cw - nw) // 2, (ch - nh) // 2
    resized = frame if (nw, nh) == (w, h) else cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    blob = np.empty((1, 3, ch, cw), dtype=np.float32)
    for c in range(3):  # BGR -> RGB while scaling, without a temporary HWC float copy
        np.multiply(canvas[:, :, 2 - c], 1.0 / 255.0, out=blob[0, c], dtype=np.float32)
    return blob, Letterbox(scale, pad_x, pad_y)


@dataclass(frozen=True)
class _Prepared:
    """A frame letterboxed for the model, waiting for its batch."""

    index: int
    frame: np.ndarray
    blob: np.ndarray
    lb: Letterbox
    letterbox_ms: float
    letterbox_cpu_ms: float


class Detector:
    """A YOLO end2end ONNX model: `detect(frame_bgr)` gives detections in the frame's pixels.

    `providers` lists runtimes in order of preference ("openvino", "cuda", "cpu", "auto"); see runtime.py.
    A dynamic-shape model runs at any size (`detect_timed(frame, imgsz=320)`) with the
    rectangular letterbox; a fixed-shape one only at its own square size.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        threads: int = 2,
        conf: float = 0.35,
        providers: Sequence[str] = ("cpu",),
        precision: str = "auto",
        shared_choice: Path | None = None,
    ) -> None:
        model_path = Path(model_path)
        info = read_model_info(model_path)
        self.name = info.name
        self.imgsz = info.imgsz
        self.classes = info.classes
        self.precision = info.precision  # "f32", or "int8" for the copy `fusionhub models quantize` writes
        self.conf = conf
        self._backend = load_backend(
            model_path, wanted=providers, threads=threads, precision=precision, prefix=f"detector {info.name}",
            imgsz=info.imgsz, shared_choice=shared_choice,
        )
        shape = self._backend.input_shape
        if len(shape) != 4 or shape[1] != 3:
            raise DetectorError(f"model input is {shape}, expected (1, 3, H, W)")
        self.dynamic = self._backend.dynamic
        if not self.dynamic and shape[2:] != (self.imgsz, self.imgsz):
            raise DetectorError(f"model input is {shape}, sidecar says {self.imgsz}")
        self.providers = [self._backend.name]
        log.debug("detector %s %dpx on %s (dynamic shape: %s)", self.name, self.imgsz, self.providers, self.dynamic)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Objects in a BGR uint8 frame, confidence at least `conf`."""
        return self.detect_timed(frame)[0]

    @property
    def batches(self) -> bool:
        """Whether several frames can go through the model at once (its batch dimension is free)."""
        return self._backend.input_shape[0] is None

    def warm(self, imgsz: int, max_batch: int) -> int:
        """Run the model on blank 16:9 camera frames at `imgsz` in each batch size up to `max_batch`, so
        that OpenVINO compiles those graphs now (about 0.3 s each) and not while frames wait.

        Returns the largest batch the model runs: 1 where its batch size is fixed, or where a runtime
        cannot run more at once (logged); raises DetectorError where it cannot run even one frame.
        """
        _, _, h, w = probe_shape(self._backend, imgsz if self.dynamic else self.imgsz)
        largest = max(1, max_batch) if self.batches else 1
        for n in range(1, largest + 1):
            try:
                self._backend.run(np.zeros((n, 3, h, w), np.float32))
            except DetectorError as exc:
                if n == 1:
                    raise
                log.warning("detector %s on %s cannot run %d frames at once (%s); running %d at most",
                            self.name, self.providers[0], n, exc, n - 1)
                return n - 1
        return largest

    def detect_timed(self, frame: np.ndarray, imgsz: int | None = None) -> tuple[list[Detection], Timings]:
        """Like `detect`, with how long each stage took; `imgsz` (dynamic models only) overrides the size."""
        result = self.detect_many([(frame, imgsz)])[0]
        if isinstance(result, DetectorError):
            raise result
        return result

    def detect_many(
        self, frames: Sequence[tuple[np.ndarray, int | None]], *, max_batch: int = 1
    ) -> list[tuple[list[Detection], Timings] | DetectorError]:
        """`detect_timed` for each (frame, imgsz), in order; a frame that fails gets its error, the others go on.

        Frames whose inputs have the same shape go through the model together, up to `max_batch`
        at once: on OpenVINO four 320x192 frames cost about 40 % less CPU each than one at a time
        (two workers on two cores), on ONNX Runtime's CPU provider about the same. A model with a
        fixed batch dimension runs them one by one.
        """
        results: list[tuple[list[Detection], Timings] | DetectorError | None] = [None] * len(frames)
        groups: dict[tuple[int, ...], list[_Prepared]] = {}
        for i, (frame, imgsz) in enumerate(frames):
            try:
                size = self._input_size(frame, imgsz)
            except DetectorError as exc:
                results[i] = exc
                continue
            c0, t0 = time.process_time(), time.perf_counter()
            blob, lb = letterbox(frame, size, rect=self.dynamic)
            prepared = _Prepared(i, frame, blob, lb, (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3)
            groups.setdefault(blob.shape, []).append(prepared)
        largest = max(1, max_batch) if self.batches else 1
        for group in groups.values():
            for start in range(0, len(group), largest):
                self._run(group[start : start + largest], results)
        return [r if r is not None else DetectorError("frame not run") for r in results]

    def _input_size(self, frame: np.ndarray, imgsz: int | None) -> int:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise DetectorError(f"expected an HxWx3 uint8 BGR frame, got {frame.shape} {frame.dtype}")
        if imgsz is None or imgsz == self.imgsz:
            return self.imgsz
        if not self.dynamic:
            raise DetectorError(f"model {self.name} has a fixed {self.imgsz}px input; cannot run at {imgsz}px")
        if imgsz % STRIDE or not STRIDE <= imgsz <= 4096:
            raise DetectorError(f"input size {imgsz} is not a multiple of {STRIDE}")
        return imgsz

    def _run(self, chunk: list[_Prepared], results: list[tuple[list[Detection], Timings] | DetectorError | None]) -> None:
        n = len(chunk)
        blob = chunk[0].blob if n == 1 else np.concatenate([p.blob for p in chunk])
        c1, t1 = time.process_time(), time.perf_counter()
        try:
            out = np.asarray(self._backend.run(blob))
        except DetectorError as exc:
            for p in chunk:
                results[p.index] = exc
            return
        infer_ms, infer_cpu_ms = (time.perf_counter() - t1) * 1e3 / n, (time.process_time() - c1) * 1e3 / n
        for k, p in enumerate(chunk):
            c2, t2 = time.process_time(), time.perf_counter()
            dets = self._decode(out[k], p.lb, p.frame.shape[1], p.frame.shape[0])
            post_ms, post_cpu_ms = (time.perf_counter() - t2) * 1e3, (time.process_time() - c2) * 1e3
            results[p.index] = dets, Timings(
                p.letterbox_ms, infer_ms, post_ms, p.letterbox_cpu_ms, infer_cpu_ms, post_cpu_ms, batch=n
            )

    def _decode(self, rows: np.ndarray, lb: Letterbox, width: int, height: int) -> list[Detection]:
        rows = rows[rows[:, 4] >= self.conf]
        if rows.size == 0:
            return []
        xy = rows[:, :4].astype(np.float64)
        xy[:, [0, 2]] = np.clip((xy[:, [0, 2]] - lb.pad_x) / lb.scale, 0, width)
        xy[:, [1, 3]] = np.clip((xy[:, [1, 3]] - lb.pad_y) / lb.scale, 0, height)
        dets = []
        for (x1, y1, x2, y2), score, cls in zip(xy, rows[:, 4], rows[:, 5], strict=True):
            idx = int(cls)
            label = self.classes[idx] if 0 <= idx < len(self.classes) else str(idx)
            if x2 - x1 >= 1.0 and y2 - y1 >= 1.0:
                dets.append(Detection(float(x1), float(y1), float(x2), float(y2), label, float(score)))
        return dets
