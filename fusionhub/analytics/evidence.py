"""Evidence pictures: the analysed frame with the zone and the boxes drawn (OpenCV only).

Synchronous; the hub runs `write_evidence` in a thread.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fusionhub.analytics.detection import Detection
from fusionhub.analytics.errors import EvidenceError

ZONE_BGR = (0, 200, 255)  # amber
FLAGGED_BGR = (0, 0, 255)  # red
OTHER_BGR = (255, 200, 0)  # light blue


@dataclass(frozen=True)
class Marked:
    """A box to draw: the flagged vehicle is red, others blue."""

    det: Detection
    track_id: int | None
    flagged: bool


def render(frame: np.ndarray, polygon: Sequence[tuple[float, float]], boxes: Sequence[Marked]) -> np.ndarray:
    """A copy of the frame with the zone (translucent) and labelled boxes drawn."""
    h, w = frame.shape[:2]
    out = frame.copy()
    pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in polygon], dtype=np.int32)
    overlay = out.copy()
    cv2.fillPoly(overlay, [pts], ZONE_BGR)
    cv2.addWeighted(overlay, 0.25, out, 0.75, 0, dst=out)
    thick = max(1, round(min(w, h) / 240))
    cv2.polylines(out, [pts], True, ZONE_BGR, thick, cv2.LINE_AA)
    scale = max(0.4, min(w, h) / 900)
    # flagged last so it is on top
    for m in sorted(boxes, key=lambda m: m.flagged):
        colour = FLAGGED_BGR if m.flagged else OTHER_BGR
        p1 = (round(m.det.x1), round(m.det.y1))
        p2 = (round(m.det.x2), round(m.det.y2))
        cv2.rectangle(out, p1, p2, colour, thick + (1 if m.flagged else 0), cv2.LINE_AA)
        text = f"{m.det.label} {m.det.confidence:.2f}" + (f" #{m.track_id}" if m.track_id is not None else "")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = p1[1] - 4 if p1[1] - th - base - 4 >= 0 else p1[1] + th + 4
        cv2.rectangle(out, (p1[0], ty - th - base), (p1[0] + tw + 4, ty + base), colour, -1)
        cv2.putText(out, text, (p1[0] + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def write_evidence(
    data_dir: Path,
    frame: np.ndarray,
    polygon: Sequence[tuple[float, float]],
    boxes: Sequence[Marked],
    *,
    quality: int = 85,
) -> str:
    """Draw and save `<data_dir>/evidence/<uuid>.jpg`; returns the path relative to data_dir."""
    rel = Path("evidence") / f"{uuid.uuid4()}.jpg"
    _write_jpeg(data_dir, rel, render(frame, polygon, boxes), quality)
    return rel.as_posix()


def write_clean_frame(data_dir: Path, evidence_rel: str, frame: np.ndarray, *, quality: int = 95) -> str:
    """Save the undrawn frame next to its evidence (`<uuid>-frame.jpg`), for review-based training."""
    ev = Path(evidence_rel)
    rel = ev.with_name(f"{ev.stem}-frame.jpg")
    _write_jpeg(data_dir, rel, frame, quality)
    return rel.as_posix()


def _write_jpeg(data_dir: Path, rel: Path, image: np.ndarray, quality: int) -> None:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EvidenceError("JPEG encoding failed")
    path = data_dir / rel
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(jpeg.tobytes())
        os.replace(tmp, path)  # readers never see half a picture
    except OSError as exc:
        raise EvidenceError(f"cannot write evidence under {data_dir}: {exc.strerror}") from exc
