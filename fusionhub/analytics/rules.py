"""Zones, a small per-camera tracker and the dwell rule. Pure logic: no I/O, no clocks, no threads.

Time is whatever the caller passes as `ts` (the frame's epoch seconds), so the rules behave the
same live and in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fusionhub.analytics.detection import Detection

VEHICLE_CLASSES: frozenset[str] = frozenset({"car", "bus", "truck", "motorcycle"})
MIN_ZONE_AREA = 1e-4  # of the frame; smaller is a slip of the mouse, not a zone
DUPLICATE_IOU = 0.7  # two vehicle boxes overlapping this much are one vehicle seen as two classes


class ZoneSpec(BaseModel):
    """A zone drawn on a camera: a polygon in normalised coordinates (0–1, origin top left)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(description="zone id (from the camera record)")
    name: str = Field(min_length=1, max_length=200, description="shown on flags")
    kind: Literal["road"] = Field(default="road", description="road: vehicles must not stay")
    polygon: list[tuple[float, float]] = Field(
        min_length=3, max_length=64, description="vertices (x, y), each 0–1, in drawing order"
    )
    dwell_s: float = Field(default=60.0, ge=0.0, le=86400.0, description="how long a vehicle may stay before a flag")
    classes: list[str] | None = Field(
        default=None, max_length=80, description="object classes this zone watches; default car, bus, truck, motorcycle"
    )

    @field_validator("polygon")
    @classmethod
    def _check_polygon(cls, poly: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for x, y in poly:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"polygon point ({x}, {y}) is outside 0–1")
        if polygon_area(poly) < MIN_ZONE_AREA:
            raise ValueError("polygon has (almost) no area")
        return poly

    @property
    def watched(self) -> frozenset[str]:
        """Classes that count for this zone."""
        return frozenset(self.classes) if self.classes else VEHICLE_CLASSES

    @property
    def rule(self) -> Literal["occupied_road"]:
        """The rule name a flag from this zone carries."""
        return "occupied_road"


def polygon_area(poly: Sequence[tuple[float, float]]) -> float:
    """Unsigned area (shoelace formula)."""
    s = 0.0
    for (x1, y1), (x2, y2) in zip(poly, [*poly[1:], poly[0]], strict=True):
        s += x1 * y2 - x2 * y1
    return abs(s) / 2.0


def point_in_polygon(x: float, y: float, poly: Sequence[tuple[float, float]]) -> bool:
    """Even-odd ray casting."""
    inside = False
    n = len(poly)
    j = n - 1
    for i in range(n):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def iou(a: Detection, b: Detection) -> float:
    """Intersection over union of two boxes."""
    iw = min(a.x2, b.x2) - max(a.x1, b.x1)
    ih = min(a.y2, b.y2) - max(a.y1, b.y1)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Presence:
    """One track's stay in one zone."""

    entered_at: float
    last_inside: float
    flagged: bool = False


@dataclass
class Track:
    """A vehicle followed across samples of one camera."""

    id: int
    det: Detection
    last_seen: float
    presence: dict[int, _Presence] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleFlag:
    """A rule fired: `track` stayed in `zone` since `first_seen_at` (frame time `ts`)."""

    camera_id: int
    zone: ZoneSpec
    track_id: int
    detection: Detection
    first_seen_at: float
    ts: float
    others: tuple[tuple[int, Detection], ...] = ()  # other watched tracks seen in the zone now


class CameraRules:
    """Tracks and dwell timers of one camera; `update` with each analysed sample, in time order."""

    def __init__(
        self,
        camera_id: int,
        zones: Iterable[ZoneSpec] = (),
        *,
        match_iou: float = 0.3,
        grace_s: float = 3.5,
    ) -> None:
        self.camera_id = camera_id
        self.match_iou = match_iou
        self.grace_s = grace_s
        self.zones: dict[int, ZoneSpec] = {}
        self.tracks: dict[int, Track] = {}
        self.last_ts: float | None = None
        self._next_id = 1
        self.set_zones(zones)

    def set_zones(self, zones: Iterable[ZoneSpec]) -> None:
        """Replace the zones; a zone whose definition changed starts its dwell timers afresh."""
        new = {z.id: z for z in zones}
        for zid, old in self.zones.items():
            if new.get(zid) != old:
                for t in self.tracks.values():
                    t.presence.pop(zid, None)
        self.zones = new

    @property
    def watched(self) -> frozenset[str]:
        """Every class any zone watches: the ones worth tracking."""
        out: frozenset[str] = frozenset()
        for z in self.zones.values():
            out |= z.watched
        return out

    def update(self, ts: float, detections: Sequence[Detection], width: int, height: int) -> list[RuleFlag]:
        """Feed one analysed sample; returns the flags it raises (each stay flags once)."""
        if self.last_ts is not None and ts <= self.last_ts:
            return []  # a late or repeated sample would rewind the dwell clocks
        self.last_ts = ts
        seen = self._match(ts, _dedupe([d for d in detections if d.label in self.watched]))
        # forget tracks missed for longer than the grace: a vehicle that comes back is a new stay
        for tid in [tid for tid, t in self.tracks.items() if ts - t.last_seen > self.grace_s]:
            del self.tracks[tid]
        flags: list[RuleFlag] = []
        for zone in self.zones.values():
            inside: list[Track] = []
            for track in self.tracks.values():
                pres = track.presence.get(zone.id)
                if pres is not None and ts - pres.last_inside > self.grace_s:
                    del track.presence[zone.id]  # left (or out of sight) long enough: the stay is over
                    pres = None
                if track.id not in seen or track.det.label not in zone.watched:
                    continue
                bx, by = track.det.bottom_centre
                if not point_in_polygon(bx / width, by / height, zone.polygon):
                    continue
                inside.append(track)
                if pres is None:
                    pres = track.presence[zone.id] = _Presence(entered_at=ts, last_inside=ts)
                pres.last_inside = ts
            for track in inside:
                pres = track.presence[zone.id]
                if not pres.flagged and ts - pres.entered_at >= zone.dwell_s:
                    pres.flagged = True
                    others = tuple((t.id, t.det) for t in inside if t is not track)
                    flags.append(RuleFlag(self.camera_id, zone, track.id, track.det, pres.entered_at, ts, others))
        return flags

    def _match(self, ts: float, dets: list[Detection]) -> set[int]:
        """Greedy IoU matching (centroid distance as a fallback for small, jittery boxes)."""
        pairs: list[tuple[float, int, int]] = []
        for tid, track in self.tracks.items():
            for i, d in enumerate(dets):
                score = iou(track.det, d)
                if score < self.match_iou and _near(track.det, d):
                    score = self.match_iou  # ranks below every real overlap
                if score >= self.match_iou:
                    pairs.append((score, tid, i))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _score, tid, i in pairs:
            if tid in used_t or i in used_d:
                continue
            used_t.add(tid)
            used_d.add(i)
            self.tracks[tid].det = dets[i]
            self.tracks[tid].last_seen = ts
        for i, d in enumerate(dets):
            if i not in used_d:
                tid = self._next_id
                self._next_id += 1
                self.tracks[tid] = Track(tid, d, ts)
                used_t.add(tid)
        return used_t


def _near(a: Detection, b: Detection) -> bool:
    """Centres closer than a quarter of the smaller box's size."""
    ax, ay = (a.x1 + a.x2) / 2, (a.y1 + a.y2) / 2
    bx, by = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
    size = min(max(a.x2 - a.x1, a.y2 - a.y1), max(b.x2 - b.x1, b.y2 - b.y1))
    return (ax - bx) ** 2 + (ay - by) ** 2 < (0.25 * size) ** 2


def _dedupe(dets: list[Detection]) -> list[Detection]:
    """Drop a box that overlaps a more confident one heavily (one bus seen as bus and truck)."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: d.confidence, reverse=True):
        if all(iou(d, k) < DUPLICATE_IOU for k in kept):
            kept.append(d)
    return kept
