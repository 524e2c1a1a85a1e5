"""Bring a city's own fine-tuned model in: export its Ultralytics weights to ONNX with the sidecar
the runtime reads (name, input size, class names), so `analytics.model = "<name>"` loads it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from fusionhub.analytics.errors import ModelExportError
from fusionhub.analytics.models import (
    SIDECAR_VERSION,
    ModelFiles,
    Progress,
    _export,
    _sha256,
    _write_atomic,
    read_model_info,
    sidecar_path,
)

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # what AnalyticsConfig.model accepts


def import_model(
    weights: Path, data_dir: Path, name: str, *, imgsz: int = 640, progress: Progress | None = None
) -> ModelFiles:
    """Export `weights` (an Ultralytics .pt, e.g. runs/detect/train/weights/best.pt) to
    `<data_dir>/models/<name>-<imgsz>.onnx` plus its sidecar. ModelExportError when it cannot."""
    say = progress or (lambda msg: log.info("%s", msg))
    if not NAME.match(name):
        raise ModelExportError(f"model name {name!r}: letters, digits, '_', '.', '-' (up to 64)")
    if imgsz % 32 or not 160 <= imgsz <= 1280:
        raise ModelExportError(f"input size {imgsz}: a multiple of 32 from 160 to 1280")
    if not weights.is_file():
        raise ModelExportError(f"no weights file {weights}")
    models = Path(data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    onnx = models / f"{name}-{imgsz}.onnx"
    say(f"Exporting {weights} to ONNX at {imgsz} px as {name}…")
    classes = _export(weights.resolve(), onnx, imgsz)
    sidecar = {
        "version": SIDECAR_VERSION,
        "name": name,
        "imgsz": imgsz,
        "classes": classes,
        "weights_sha256": _sha256(weights),
        "onnx_sha256": _sha256(onnx),
        "dynamic": True,
        "source": str(weights),
        "output": "end2end [1,300,6] x1,y1,x2,y2,score,class in letterboxed pixels",
    }
    _write_atomic(sidecar_path(onnx), json.dumps(sidecar, indent=1).encode())
    info = read_model_info(onnx)
    say(f"Model ready: {onnx} with classes {', '.join(info.classes)}")
    return ModelFiles(name, imgsz, weights, onnx, sidecar_path(onnx), info.classes)
