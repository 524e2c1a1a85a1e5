"""Reviewed flags as an Ultralytics (YOLO) dataset, so a city can fine-tune its own model.

Confirmed flags give positive labels (the flagged boxes, normalised `class cx cy w h`); dismissed
ones are background images (an empty label file): the picture shows nothing the rule should have
flagged. Class names per rule: occupied_road keeps the detector's label (car, bus…), street_stall
boxes become `street_stall`, a bin flag's zone box becomes `overflowing_bin`. Images are the clean
frames analytics saved beside the evidence; the split is by a hash of the flag id (stable across
exports). Synchronous file work: run it from the CLI or a thread.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2

from fusionhub.analytics.errors import AnalyticsError

SPLITS = ("train", "val")
STALL_CLASS = "street_stall"
BIN_CLASS = "overflowing_bin"


class DatasetError(AnalyticsError):
    """The dataset cannot be written where asked (not empty, not writable) or has nothing in it."""


@dataclass
class ExportReport:
    """What an export wrote."""

    out: Path
    images: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    positives: int = 0
    negatives: int = 0
    boxes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    classes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (also written as summary.json)."""
        return {
            "out": str(self.out),
            "images": self.images,
            "positives": self.positives,
            "negatives": self.negatives,
            "boxes": dict(self.boxes),
            "skipped": dict(self.skipped),
            "classes": self.classes,
        }


def target_class(rule: str, label: str) -> str | None:
    """The dataset class a confirmed flag's box teaches; None for boxes that teach nothing."""
    if rule == "street_stall":
        return STALL_CLASS
    if rule == "overflowing_bin":
        return BIN_CLASS if label == BIN_CLASS else None  # litter boxes only weighed the check
    return label


def split_of(flag_id: str, val_fraction: float) -> str:
    """train or val, from a hash of the id: the same flag lands in the same split every time."""
    bucket = int(hashlib.sha256(flag_id.encode()).hexdigest()[:8], 16) % 1000
    return "val" if bucket < val_fraction * 1000 else "train"


def yolo_line(cls: int, box: Mapping[str, Any], width: int, height: int) -> str | None:
    """`cls cx cy w h` normalised to 0-1 and clipped to the picture; None for a box with no area."""
    x1 = min(max(float(box["x1"]), 0.0), width)
    x2 = min(max(float(box["x2"]), 0.0), width)
    y1 = min(max(float(box["y1"]), 0.0), height)
    y2 = min(max(float(box["y2"]), 0.0), height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    return f"{cls} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"


def _safe(data_dir: Path, rel: str) -> Path | None:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts:
        return None
    return data_dir / rel


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out} exists and is not an empty directory; choose a new one")


def export_dataset(
    data_dir: Path,
    samples: Iterable[Mapping[str, Any]],
    out: Path,
    *,
    val_fraction: float = 0.2,
    classes: Sequence[str] | None = None,
) -> ExportReport:
    """Write `out/images/{train,val}`, `out/labels/{train,val}`, `out/data.yaml`, `out/manifest.json`.

    `samples` are reviewed flags (dispatch's `review_samples`). `classes` fixes the class list and
    its order (e.g. the city model's); boxes of other classes are then left out and counted.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError("the validation share must be between 0 and 1")
    out = out.resolve()
    _check_out(out)
    plan: list[tuple[Mapping[str, Any], Path, list[tuple[str, Mapping[str, Any]]]]] = []
    report = ExportReport(out)
    for s in samples:
        src = _safe(data_dir, str(s.get("frame_path") or ""))
        if src is None or not src.is_file():
            report.skipped["missing_frame"] += 1
            continue
        wanted: list[tuple[str, Mapping[str, Any]]] = []
        if s["status"] == "confirmed":
            for box in s.get("boxes") or []:
                name = target_class(str(s["rule"]), str(box.get("label", "")))
                if name is not None:
                    wanted.append((name, box))
            if not wanted:
                report.skipped["confirmed_without_boxes"] += 1
                continue
        plan.append((s, src, wanted))
    names = list(classes) if classes else sorted({n for _, _, w in plan for n, _ in w})
    if not plan:
        raise DatasetError("no reviewed flag with a saved frame matches; nothing to export")
    if not names:
        names = [BIN_CLASS]  # only negatives: a one-class set still trains and validates
    index = {n: i for i, n in enumerate(names)}
    report.classes = names
    splits = [split_of(str(s["id"]), val_fraction) for s, _, _ in plan]
    if len(plan) >= 2:
        # both splits need a picture: move one over when the hash put them all on one side
        if "val" not in splits:
            splits[0] = "val"
        if "train" not in splits:
            splits[-1] = "train"
    for sub in ("images", "labels"):
        for split in SPLITS:
            (out / sub / split).mkdir(parents=True, exist_ok=True)
    manifest = []
    for (s, src, wanted), split in zip(plan, splits, strict=True):
        image = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if image is None:
            report.skipped["unreadable_frame"] += 1
            continue
        height, width = image.shape[:2]
        sx, sy = width / max(1, int(s.get("frame_width") or width)), height / max(1, int(s.get("frame_height") or height))
        lines = []
        for name, box in wanted:
            if name not in index:
                report.skipped[f"class_not_listed:{name}"] += 1
                continue
            scaled = {k: float(box[k]) * (sx if k[0] == "x" else sy) for k in ("x1", "y1", "x2", "y2")}
            line = yolo_line(index[name], scaled, width, height)
            if line is not None:
                lines.append(line)
                report.boxes[name] += 1
        if s["status"] == "confirmed" and not lines:
            report.skipped["confirmed_without_boxes"] += 1
            continue
        stem = f"flag-{s['id']}"
        shutil.copyfile(src, out / "images" / split / f"{stem}{src.suffix.lower()}")
        (out / "labels" / split / f"{stem}.txt").write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
        report.images[split] += 1
        if lines:
            report.positives += 1
        else:
            report.negatives += 1
        manifest.append(
            {
                "flag_id": s["id"], "rule": s["rule"], "status": s["status"], "split": split,
                "camera_id": s.get("camera_id"), "zone_id": s.get("zone_id"), "labels": len(lines),
                "raised_at": s.get("raised_at"), "reviewed_at": s.get("reviewed_at"),
                "dismiss_reason": s.get("dismiss_reason"),
            }
        )
    if not any(report.images.values()):
        raise DatasetError("none of the frames could be read; nothing exported")
    # a one-picture set validates on its training picture rather than on nothing
    val = "images/val" if report.images["val"] else "images/train"
    (out / "data.yaml").write_text(_data_yaml(out, names, val), encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(report.as_dict(), indent=1), encoding="utf-8")
    return report


def _data_yaml(out: Path, names: Sequence[str], val: str) -> str:
    # JSON strings are valid YAML scalars: names with spaces or colons stay intact
    lines = [
        "# FusionHub review dataset: confirmed flags are labelled, dismissed ones are background",
        f"path: {json.dumps(str(out))}",
        "train: images/train",
        f"val: {val}",
        f"nc: {len(names)}",
        "names:",
        *(f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)),
    ]
    return "\n".join(lines) + "\n"
