"""The overflowing-bin reference check: how different a bin zone looks from its captured normal state.

Method (see docs/ANALYTICS.md): the zone's bounding box is cut out, turned grey, shrunk to fit
WORK_SIDE pixels, and compared with the same cut of the reference picture by the *structure* of
the picture, not its brightness: gradients of the log intensity, compared per cell of a grid by
normalised correlation. A brightness gain or a gamma change scales log-gradients without turning
them, so the correlation stays high; bags, spill-over and boxes bring edges where there were none
(or cover edges that were there) and the correlation drops. The score is the share of the zone
that changed (0-1); litter objects the detector finds in the zone add weight; a zone learns how
noisy its score normally is and keeps its threshold above that noise.

Cheap and synchronous (a 96-pixel crop: well under a millisecond); the rules call it on the loop.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fusionhub.analytics.detection import Detection
from fusionhub.analytics.errors import EvidenceError
from fusionhub.analytics.geometry import point_in_polygon
from fusionhub.analytics.ruleconfig import RulesConfig

WORK_SIDE = 96  # the longer side of the working crop, in pixels
GRID = 6  # cells per side the change is measured in
LOG_OFFSET = 8.0  # keeps log() of dark, noisy pixels from exploding
# per-pixel Sobel energy of the log image below which a cell counts as flat (no structure):
# about a 2 % intensity step per pixel, well above sensor and JPEG noise after the blur
FLAT_ENERGY = (8 * 0.02) ** 2
MIN_CELL_COVER = 0.3  # a grid cell counts when the zone polygon covers this much of it
REFERENCES_DIR = "references"

Polygon = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class ZoneCrop:
    """Log-intensity gradients of a zone's box at working size, and the polygon's mask there."""

    gx: np.ndarray
    gy: np.ndarray
    mask: np.ndarray
    size: tuple[int, int]  # (width, height)


def zone_box(polygon: Polygon, width: int, height: int) -> tuple[int, int, int, int]:
    """The polygon's bounding box in pixels (x0, y0, x1, y1), at least one pixel each way."""
    xs = [x for x, _ in polygon]
    ys = [y for _, y in polygon]
    x0 = min(width - 1, max(0, math.floor(min(xs) * width)))
    y0 = min(height - 1, max(0, math.floor(min(ys) * height)))
    x1 = max(x0 + 1, min(width, math.ceil(max(xs) * width)))
    y1 = max(y0 + 1, min(height, math.ceil(max(ys) * height)))
    return x0, y0, x1, y1


def crop_zone(frame: np.ndarray, polygon: Polygon, size: tuple[int, int] | None = None) -> ZoneCrop:
    """The zone of a BGR frame as a ZoneCrop; `size` (from the reference) makes two crops comparable."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = zone_box(polygon, w, h)
    cw, ch = x1 - x0, y1 - y0
    if size is None:
        scale = WORK_SIDE / max(cw, ch)
        size = (max(GRID * 2, round(cw * scale)), max(GRID * 2, round(ch * scale)))
    gray = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    logi = np.log(small.astype(np.float32) + LOG_OFFSET)
    logi = cv2.GaussianBlur(logi, (3, 3), 0)
    gx = cv2.Sobel(logi, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(logi, cv2.CV_32F, 0, 1, ksize=3)
    sx, sy = size[0] / cw, size[1] / ch
    pts = np.array([[(x * w - x0) * sx, (y * h - y0) * sy] for x, y in polygon], dtype=np.float32)
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return ZoneCrop(gx, gy, mask.astype(bool), size)


def change_score(ref: ZoneCrop, cur: ZoneCrop) -> float:
    """Share of the zone (0-1) whose structure differs from the reference; 0 = the same picture."""
    if ref.size != cur.size:
        raise ValueError(f"crops of different sizes {ref.size} and {cur.size}")
    w, h = ref.size
    dot = ref.gx * cur.gx + ref.gy * cur.gy
    er = ref.gx * ref.gx + ref.gy * ref.gy
    ec = cur.gx * cur.gx + cur.gy * cur.gy
    xs = np.linspace(0, w, GRID + 1).round().astype(int)
    ys = np.linspace(0, h, GRID + 1).round().astype(int)
    total = weight = 0.0
    for i in range(GRID):
        for j in range(GRID):
            cell = (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1]))
            m = ref.mask[cell]
            n = int(m.sum())
            if n == 0 or n < MIN_CELL_COVER * m.size:
                continue
            floor = n * FLAT_ENERGY
            e_ref, e_cur = float(er[cell][m].sum()), float(ec[cell][m].sum())
            if e_ref < floor and e_cur < floor:
                diff = 0.0  # flat then, flat now
            else:
                # the floor stands in for a flat side only, so a picture compared with itself scores 0
                sim = float(dot[cell][m].sum()) / math.sqrt(max(e_ref, floor) * max(e_cur, floor))
                diff = min(1.0, max(0.0, 1.0 - sim))
            total += diff * n
            weight += n
    return total / weight if weight else 0.0


def _centre_inside(d: Detection, polygon: Polygon, width: int, height: int) -> bool:
    return point_in_polygon((d.x1 + d.x2) / 2 / width, (d.y1 + d.y2) / 2 / height, polygon)


def _covered(d: Detection, box: tuple[int, int, int, int]) -> float:
    """Share of `box` that the detection covers."""
    x0, y0, x1, y1 = box
    iw = min(d.x2, x1) - max(d.x1, x0)
    ih = min(d.y2, y1) - max(d.y1, y0)
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / float((x1 - x0) * (y1 - y0))


def _in_front(d: Detection, box: tuple[int, int, int, int], share: float) -> bool:
    """Someone or something standing in front of the zone: it covers a good share of the zone's box
    and rises above it (a box wholly inside the zone is more likely part of the pile)."""
    top, height = box[1], box[3] - box[1]
    return _covered(d, box) >= share and d.y1 < top - 0.1 * height


@dataclass(frozen=True)
class BinReading:
    """One sample of a bin zone: its change score, litter found, and whether it was hidden."""

    score: float  # change plus litter weight, 0-1
    change: float
    litter: tuple[Detection, ...]
    occluded: bool
    threshold: float
    box: tuple[int, int, int, int]  # the zone's box in pixels of the frame


class BinWatch:
    """The reference check's state for one bin zone: the learnt noise and the current overflow."""

    def __init__(self) -> None:
        self.noise_mean = 0.0
        self.noise_var = 0.0
        self.noise_n = 0
        self.over_since: float | None = None
        self.last_over: float | None = None
        self.flagged_at: float | None = None
        self.reported_at: float | None = None  # the last flag or sighting of this overflow
        self.repeats = 0
        self.dismissed = False  # a reviewer dismissed this overflow's flag: no re-alert until it ends

    def threshold(self, cfg: RulesConfig, base: float | None) -> float:
        """The zone's threshold now: its base, raised above the noise it has learnt (never above 0.95)."""
        floor = base if base is not None else cfg.bin_threshold
        if self.noise_n < 5:
            return floor
        return min(0.95, max(floor, self.noise_mean + cfg.bin_noise_k * math.sqrt(self.noise_var)))

    def read(
        self,
        frame: np.ndarray,
        detections: Sequence[Detection],
        polygon: Polygon,
        ref: ZoneCrop,
        cfg: RulesConfig,
        base: float | None,
    ) -> BinReading:
        """Measure one frame against the reference (pure: the state does not change)."""
        h, w = frame.shape[:2]
        box = zone_box(polygon, w, h)
        occluders = set(cfg.classes.occluders)
        occluded = any(d.label in occluders and _in_front(d, box, cfg.bin_occlusion) for d in detections)
        litter_names = set(cfg.classes.litter)
        litter = tuple(d for d in detections if d.label in litter_names and _centre_inside(d, polygon, w, h))
        change = change_score(ref, crop_zone(frame, polygon, ref.size))
        bonus = min(cfg.litter_cap, cfg.litter_weight * len(litter))
        score = min(1.0, change + bonus)
        return BinReading(score, change, litter, occluded, self.threshold(cfg, base), box)

    def step(
        self, ts: float, reading: BinReading, cfg: RulesConfig, *, dwell_s: float, realert_s: float | None
    ) -> bool:
        """Advance the overflow clock with a reading; True when a flag (or re-alert) is due now."""
        if reading.occluded:
            return False  # someone or something stands in front: the sample neither counts nor resets
        if reading.score < reading.threshold:
            self._learn(reading.score, cfg)
            if self.last_over is not None and ts - self.last_over > cfg.bin_grace_s:
                self.reset()  # back to normal (emptied): a later overflow flags again
            return False
        if self.over_since is None:
            self.over_since = ts
        self.last_over = ts
        if self.flagged_at is None:
            if ts - self.over_since >= dwell_s:
                self.flagged_at = self.reported_at = ts
                return True
        elif not self.dismissed and realert_s is not None and ts - self.flagged_at >= realert_s:
            self.flagged_at = self.reported_at = ts
            self.repeats += 1
            return True
        return False

    def reset(self) -> None:
        """Forget the current overflow (window closed, zone changed, back to normal)."""
        self.over_since = self.last_over = self.flagged_at = self.reported_at = None
        self.repeats = 0
        self.dismissed = False

    def _learn(self, score: float, cfg: RulesConfig) -> None:
        # only normal-looking samples teach the noise level, so a slowly growing pile is not learnt
        a = cfg.bin_noise_rate if self.noise_n >= 5 else 1.0 / (self.noise_n + 1)
        delta = score - self.noise_mean
        self.noise_mean += a * delta
        self.noise_var = (1 - a) * (self.noise_var + a * delta * delta)
        self.noise_n += 1


def write_reference(data_dir: Path, camera_id: int, zone_id: int, frame: np.ndarray) -> str:
    """Save a zone's reference picture (lossless PNG) under <data_dir>/references; the relative path."""
    ok, png = cv2.imencode(".png", frame)
    if not ok:
        raise EvidenceError("PNG encoding of the reference failed")
    rel = Path(REFERENCES_DIR) / f"camera{camera_id}-zone{zone_id}-{uuid.uuid4().hex[:12]}.png"
    path = data_dir / rel
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(png.tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        raise EvidenceError(f"cannot write the reference under {data_dir}: {exc.strerror}") from exc
    return rel.as_posix()


def read_reference(data_dir: Path, rel: str) -> np.ndarray | None:
    """Load a stored reference picture; None when it is missing or unreadable."""
    path = data_dir / rel
    if not path.is_file():
        return None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return image if image is not None else None
