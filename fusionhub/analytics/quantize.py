"""`fusionhub models quantize`: an INT8 copy of the detector, calibrated on the city's own pictures
and checked against the float model before it is written.

The body of the network runs in 8-bit integers (weights per channel, activations from the ranges
seen on the calibration pictures). The first block (raw pixels in) and the detection head stay in
float: quantising the end-to-end head breaks its scores, and the first block costs little and
loses the most. The copy is refused when its detections do not agree with the float
model's on pictures it was not calibrated on. The hub loads it with `analytics.precision = "int8"`.
Runs offline, in the calling process (ONNX Runtime's quantisation tools; no torch).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fusionhub.analytics.config import INT8_SUFFIX
from fusionhub.analytics.detection import Detection
from fusionhub.analytics.errors import ModelExportError
from fusionhub.analytics.geometry import iou
from fusionhub.analytics.models import Progress, _sha256, _write_atomic, read_model_info, sidecar_path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_PICTURES = 300  # calibration gains little beyond a few hundred pictures and costs a second each
MIN_OWN_PICTURES = 8  # fewer flagged frames than this: the bundled photos are added
HOLD_OUT_FROM = 10  # with this many pictures or more, every 5th is kept for the check only
MATCH_IOU = 0.5
# An object counts as found by the other model when it has it above `conf - SCORE_MARGIN`: scores move
# by 0.02-0.03 on average under INT8 (up to ~0.25 for a single object), and an object sitting right at
# the threshold must not count as lost for a 0.01 wobble
SCORE_MARGIN = 0.1
CALIBRATION_SIZES = (320,)  # besides the model's own size: the size 16:9 cameras run at by default


def int8_path(onnx: Path) -> Path:
    """Where the INT8 copy of a float model lives: `<name>-<imgsz>-int8.onnx` beside it."""
    return onnx.with_name(f"{onnx.stem}{INT8_SUFFIX}.onnx")


@dataclass(frozen=True)
class Agreement:
    """How the INT8 copy's detections compare with the float model's on the same pictures."""

    pictures: int
    float_objects: int  # scored at least conf by the float model
    int8_objects: int  # scored at least conf by the INT8 copy
    found: int  # float objects the INT8 copy has too (same class, IoU >= 0.5, score >= conf - SCORE_MARGIN)
    confirmed: int  # INT8 objects the float model has too, likewise
    score_delta: float  # mean |score difference| of the float objects found

    @property
    def recall(self) -> float:
        """Share of the float model's objects the INT8 copy also finds."""
        return self.found / self.float_objects if self.float_objects else 1.0

    @property
    def precision(self) -> float:
        """Share of the INT8 copy's objects the float model also finds."""
        return self.confirmed / self.int8_objects if self.int8_objects else 1.0


@dataclass(frozen=True)
class QuantizeReport:
    """What `quantize_model` wrote and measured."""

    onnx: Path
    calibrated_on: int
    checked_on: int
    held_out: bool
    agreement: Agreement
    float_ms: float  # CPU per inference, one thread, ONNX Runtime, a 16:9 frame at the smallest calibration size
    int8_ms: float
    sources: list[str] = field(default_factory=list)


def default_pictures(data_dir: Path) -> tuple[list[Path], list[str]]:
    """The clean frames of the hub's own flags, topped up with Ultralytics' bundled photos when few."""
    own = sorted((data_dir / "evidence").glob("*-frame.jpg"))
    sources = [f"{len(own)} flagged frames from {data_dir / 'evidence'}"] if own else []
    if len(own) >= MIN_OWN_PICTURES:
        return own, sources
    from fusionhub.media.democlip import bus_image  # ultralytics' assets, found without importing it

    try:
        assets = sorted(p for p in bus_image().parent.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except Exception as exc:  # MediaError: ultralytics not installed
        if not own:
            raise ModelExportError(f"no calibration pictures: give --images DIR ({exc})") from exc
        return own, sources
    return [*own, *assets], [*sources, f"{len(assets)} photos bundled with ultralytics"]


def collect_pictures(paths: Sequence[Path]) -> list[Path]:
    """Every picture file under `paths` (files or directories, searched recursively), in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise ModelExportError(f"no such picture or directory: {path}")
    return found


def quantize_model(
    onnx: Path,
    pictures: Sequence[Path],
    *,
    conf: float = 0.35,
    min_agreement: float = 0.9,
    sources: Sequence[str] = (),
    keep_float: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> QuantizeReport:
    """Write `int8_path(onnx)` and its sidecar, or raise ModelExportError and write nothing.

    `keep_float`: node-name prefixes left in float (default: the model's first and last `/model.N/`
    blocks, the stem and the detection head). `min_agreement`: the least recall and precision of
    the INT8 copy's detections against the float model's, on the held-out pictures.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    say = progress or (lambda msg: log.info("%s", msg))
    info = read_model_info(onnx)
    if info.precision != "f32":
        raise ModelExportError(f"{onnx} is already {info.precision}; quantise the float model")
    images = _load(pictures)
    if not images:
        raise ModelExportError("none of the calibration pictures could be read")
    held_out = len(images) >= HOLD_OUT_FROM
    check = images[4::5] if held_out else images
    calibrate = [im for i, im in enumerate(images) if i % 5 != 4] if held_out else images
    sizes = sorted({info.imgsz, *(s for s in CALIBRATION_SIZES if s < info.imgsz)})
    prefixes = list(keep_float) if keep_float is not None else _stem_and_head(onnx)
    out = int8_path(onnx)
    say(f"Quantising {onnx.name} on {len(calibrate)} pictures at {', '.join(map(str, sizes))} px "
        f"({', '.join(prefixes) or 'nothing'} kept in float)…")
    with tempfile.TemporaryDirectory(prefix="fh-int8-", dir=onnx.parent) as tmp:
        pre, candidate = Path(tmp) / "pre.onnx", Path(tmp) / out.name
        try:
            quant_pre_process(str(onnx), str(pre), skip_symbolic_shape=True)
            import onnx as onnx_lib

            graph = onnx_lib.load(str(pre)).graph
            keep = [n.name for n in graph.node if any(n.name.startswith(prefix) for prefix in prefixes)]
            quantize_static(
                str(pre), str(candidate), _Calibration(graph.input[0].name, calibrate, sizes),
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep,
            )
        except Exception as exc:  # onnx / onnxruntime raise many kinds; the float model stays as it was
            raise ModelExportError(f"quantisation failed: {exc}") from exc
        side = json.loads(sidecar_path(onnx).read_text(encoding="utf-8"))
        side.update(precision="int8", source_onnx_sha256=info.onnx_sha256, onnx_sha256=_sha256(candidate))
        sidecar_path(candidate).write_text(json.dumps(side, indent=1), encoding="utf-8")
        agreement = _agreement(onnx, candidate, check, sizes, conf)
        where = "held-out pictures" if held_out else f"its {len(check)} calibration pictures (fewer than {HOLD_OUT_FROM})"
        say(f"Agreement with the float model on {where}: recall {agreement.recall:.3f}, precision "
            f"{agreement.precision:.3f} ({agreement.found} of {agreement.float_objects} objects), "
            f"mean score difference {agreement.score_delta:.3f}")
        if min(agreement.recall, agreement.precision) < min_agreement:
            raise ModelExportError(
                f"the INT8 copy agrees with the float model on {agreement.recall:.0%} of its objects "
                f"(precision {agreement.precision:.0%}), below {min_agreement:.0%}; not written"
            )
        from fusionhub.analytics.runtime import OrtBackend, cpu_ms_per_frame

        cpu = "CPUExecutionProvider"
        float_ms, int8_ms = cpu_ms_per_frame(
            [OrtBackend(onnx, threads=1, provider=cpu), OrtBackend(candidate, threads=1, provider=cpu)], sizes[0]
        )
        say(f"CPU per inference at {sizes[0]} px (a 16:9 frame), one thread, ONNX Runtime: float {float_ms:.1f} ms, "
            f"INT8 {int8_ms:.1f} ms")
        side.update(
            calibration={"pictures": len(calibrate), "sizes": sizes, "sources": list(sources), "kept_float": prefixes},
            agreement={
                "pictures": agreement.pictures, "held_out": held_out, "recall": round(agreement.recall, 4),
                "precision": round(agreement.precision, 4), "score_delta": round(agreement.score_delta, 4),
            },
        )
        # an earlier copy's sidecar goes first: a copy never sits beside a sidecar that is not its own
        # (cut off between the two steps, the hub refuses the copy for want of a sidecar)
        sidecar_path(out).unlink(missing_ok=True)
        os.replace(candidate, out)
        _write_atomic(sidecar_path(out), json.dumps(side, indent=1).encode())
    say(f"INT8 model written: {out}")
    return QuantizeReport(out, len(calibrate), len(check), held_out, agreement, float_ms, int8_ms, list(sources))


def _load(pictures: Sequence[Path]) -> list[np.ndarray]:
    chosen = list(pictures)
    if len(chosen) > MAX_PICTURES:  # evenly spread over the set, so every camera and hour keeps a share
        chosen = [chosen[round(i * (len(chosen) - 1) / (MAX_PICTURES - 1))] for i in range(MAX_PICTURES)]
    images = []
    for path in chosen:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            log.warning("calibration picture %s cannot be read; left out", path)
            continue
        images.append(image)
    return images


def _stem_and_head(onnx: Path) -> list[str]:
    """The first block and the detection head of an Ultralytics export: its lowest- and highest-numbered
    `/model.N/` blocks."""
    import onnx as onnx_lib

    blocks = [int(m.group(1)) for n in onnx_lib.load(str(onnx)).graph.node if (m := re.match(r"/model\.(\d+)/", n.name))]
    if not blocks:
        raise ModelExportError(f"{onnx} does not name its layers as an Ultralytics export does; cannot find its head")
    return [f"/model.{min(blocks)}/", f"/model.{max(blocks)}/"]


class _Calibration:
    """Letterboxed pictures at each size, as the detector feeds them (ONNX Runtime's CalibrationDataReader)."""

    def __init__(self, input_name: str, images: Sequence[np.ndarray], sizes: Sequence[int]) -> None:
        self._blobs = self._iter(input_name, images, sizes)

    @staticmethod
    def _iter(input_name: str, images: Sequence[np.ndarray], sizes: Sequence[int]) -> Iterator[dict[str, np.ndarray]]:
        from fusionhub.analytics.detector import letterbox

        for image in images:
            for size in sizes:
                yield {input_name: letterbox(image, size, rect=True)[0]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._blobs, None)


def _agreement(float_onnx: Path, int8_onnx: Path, images: Sequence[np.ndarray], sizes: Sequence[int], conf: float) -> Agreement:
    from fusionhub.analytics.detector import Detector

    low = max(0.01, conf - SCORE_MARGIN)
    ref = Detector(float_onnx, threads=2, conf=low)
    q8 = Detector(int8_onnx, threads=2, conf=low)
    n_float = n_int8 = found = confirmed = 0
    deltas: list[float] = []
    for image in images:
        for size in sizes:
            a, b = ref.detect_timed(image, size)[0], q8.detect_timed(image, size)[0]
            sure_a = [d for d in a if d.confidence >= conf]
            sure_b = [d for d in b if d.confidence >= conf]
            n_float += len(sure_a)
            n_int8 += len(sure_b)
            pairs = _match(sure_a, b)
            found += len(pairs)
            confirmed += len(_match(sure_b, a))
            deltas.extend(abs(da.confidence - db.confidence) for da, db in pairs)
    return Agreement(len(images) * len(sizes), n_float, n_int8, found, confirmed, float(np.mean(deltas)) if deltas else 0.0)


def _match(a: Sequence[Detection], b: Sequence[Detection]) -> list[tuple[Detection, Detection]]:
    """Greedy one-to-one pairs of the same class with IoU >= MATCH_IOU, surest first."""
    free = list(b)
    pairs = []
    for da in sorted(a, key=lambda d: -d.confidence):
        best = max((db for db in free if db.label == da.label), key=lambda db: iou(da, db), default=None)
        if best is not None and iou(da, best) >= MATCH_IOU:
            pairs.append((da, best))
            free.remove(best)
    return pairs
