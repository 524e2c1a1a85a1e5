"""YOLO on ONNX Runtime: letterbox, inference, decode (NMS-free end2end export). No torch here."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from fusionhub.analytics.detection import Detection
from fusionhub.analytics.errors import DetectorError
from fusionhub.analytics.models import read_model_info

log = logging.getLogger(__name__)

_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
PAD_VALUE = 114  # the grey Ultralytics trains its letterbox with


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each stage of one detection."""

    letterbox_ms: float
    inference_ms: float
    postprocess_ms: float


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square model input."""

    scale: float
    pad_x: int
    pad_y: int


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, pad to size×size with grey, return NCHW float32 RGB 0–1."""
    h, w = frame.shape[:2]
    scale = min(size / h, size / w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    resized = frame if (nw, nh) == (w, h) else cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    blob = np.empty((1, 3, size, size), dtype=np.float32)
    for c in range(3):  # BGR -> RGB while scaling, without a temporary HWC float copy
        np.multiply(canvas[:, :, 2 - c], 1.0 / 255.0, out=blob[0, c], dtype=np.float32)
    return blob, Letterbox(scale, pad_x, pad_y)


def choose_providers(wanted: Sequence[str]) -> list[str]:
    """The wanted execution providers that this ONNX Runtime has, CPU always last as a fallback."""
    available = set(ort.get_available_providers())
    chosen = [_PROVIDERS[w] for w in wanted if _PROVIDERS.get(w) in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class Detector:
    """A YOLO end2end ONNX model: `detect(frame_bgr)` gives detections in the frame's pixels."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        threads: int = 2,
        conf: float = 0.35,
        providers: Sequence[str] = ("cpu",),
    ) -> None:
        model_path = Path(model_path)
        info = read_model_info(model_path)
        self.name = info.name
        self.imgsz = info.imgsz
        self.classes = info.classes
        self.conf = conf
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # spinning threads would burn CPU between ~1 Hz samples on a machine shared with the hub
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options=opts, providers=choose_providers(providers))
        except Exception as exc:  # ORT raises its own untyped errors for corrupt files
            raise DetectorError(f"cannot load model {model_path}: {exc}") from exc
        inp = self._session.get_inputs()[0]
        if list(inp.shape) != [1, 3, self.imgsz, self.imgsz]:
            raise DetectorError(f"model input is {inp.shape}, sidecar says {self.imgsz}")
        self._input = inp.name
        self.providers = self._session.get_providers()
        log.debug("detector %s %dpx on %s", self.name, self.imgsz, self.providers)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Objects in a BGR uint8 frame, confidence at least `conf`."""
        return self.detect_timed(frame)[0]

    def detect_timed(self, frame: np.ndarray) -> tuple[list[Detection], Timings]:
        """Like `detect`, with how long each stage took."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise DetectorError(f"expected an HxWx3 uint8 BGR frame, got {frame.shape} {frame.dtype}")
        t0 = time.perf_counter()
        blob, lb = letterbox(frame, self.imgsz)
        t1 = time.perf_counter()
        try:
            out = self._session.run(None, {self._input: blob})[0]
        except Exception as exc:
            raise DetectorError(f"inference failed: {exc}") from exc
        t2 = time.perf_counter()
        dets = self._decode(np.asarray(out)[0], lb, frame.shape[1], frame.shape[0])
        t3 = time.perf_counter()
        return dets, Timings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

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
