"""A small per-camera tracker and the zone rules: occupied road, street stall, overflowing bin.
Pure logic: no I/O, no clocks, no threads.

Time is whatever the caller passes as `ts` (the frame's epoch seconds), so the rules behave the
same live and in tests. One stay is one flag: a tracked object that stays flags once; it flags
again only after it left (beyond the grace) and something came back, or after the zone's
re-alert interval while it is still there.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from fusionhub.analytics.bins import BinReading, BinWatch
from fusionhub.analytics.detection import Detection
from fusionhub.analytics.geometry import iou, point_in_polygon, polygon_area
from fusionhub.analytics.ruleset import RuleEnv
from fusionhub.analytics.zones import MIN_ZONE_AREA, ZoneSpec

__all__ = [
    "MIN_ZONE_AREA",
    "CameraRules",
    "RuleFlag",
    "RuleSighting",
    "Track",
    "ZoneSpec",
    "iou",
    "point_in_polygon",
    "polygon_area",
]

DUPLICATE_IOU = 0.7  # two boxes overlapping this much are one object seen as two classes
BIN_LABEL = "overflowing_bin"  # the label of a reference-check flag (and its dataset class)
REMEMBERED_FLAGS = 256  # per camera: flags whose dismissal can still reach their stay
PEOPLE_REACH = 0.5  # a person counts as at a stall within half the stall's size of its box


@dataclass
class _Presence:
    """One track's stay in one zone."""

    entered_at: float
    last_inside: float
    anchor: Detection  # where it was when the stay began (stalls must not move)
    flagged_at: float | None = None
    reported_at: float | None = None  # the last flag or sighting of this stay
    repeats: int = 0
    samples: int = 0
    with_people: int = 0
    dismissed: bool = False  # a reviewer dismissed its flag: it stays without re-alerting


@dataclass
class Track:
    """An object followed across samples of one camera."""

    id: int
    det: Detection
    last_seen: float
    presence: dict[int, _Presence] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleFlag:
    """A rule fired in `zone` at frame time `ts`: `detection` (track `track_id`, None for a bin
    reference check) has been there since `first_seen_at`; `repeat` counts re-alerts of one stay."""

    camera_id: int
    zone: ZoneSpec
    track_id: int | None
    detection: Detection
    first_seen_at: float
    ts: float
    others: tuple[tuple[int | None, Detection], ...] = ()  # other objects seen in the zone now
    repeat: int = 0


@dataclass(frozen=True)
class RuleSighting:
    """A stay that was flagged goes on at frame time `ts` (no new flag: dispatch notes it on the
    zone's open case, if there is one); `detection` is the object (or the bin zone's box) seen now."""

    camera_id: int
    zone: ZoneSpec
    detection: Detection
    first_seen_at: float
    flagged_at: float
    ts: float


class CameraRules:
    """Tracks, dwell timers and bin watches of one camera; `update` with each analysed sample, in time order."""

    def __init__(
        self,
        camera_id: int,
        zones: Iterable[ZoneSpec] = (),
        *,
        match_iou: float = 0.3,
        grace_s: float = 3.5,
        env: RuleEnv | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.match_iou = match_iou
        self.grace_s = grace_s
        self.env = env or RuleEnv()
        self.zones: dict[int, ZoneSpec] = {}
        self.tracks: dict[int, Track] = {}
        self.bins: dict[int, BinWatch] = {}
        self.bin_readings: dict[int, BinReading] = {}  # the latest reading of each bin zone
        self.last_ts: float | None = None
        self.size: tuple[int, int] | None = None  # the latest sample's (width, height)
        self.sightings: list[RuleSighting] = []  # those of the latest update
        # the stays of recent flags (flag id -> zone id, track id or None for a bin), so that a
        # reviewer's dismissal reaches the stay it was about; bounded, oldest forgotten first
        self._flags: OrderedDict[str, tuple[int, int | None]] = OrderedDict()
        self._next_id = 1
        self.set_zones(zones)

    def set_zones(self, zones: Iterable[ZoneSpec]) -> None:
        """Replace the zones; a zone whose definition changed starts its timers afresh."""
        new = {z.id: z for z in zones}
        for zid, old in self.zones.items():
            if new.get(zid) != old:
                self._pause(zid)
                self.bins.pop(zid, None)
        self.zones = new

    def remember(self, flag_id: str, flag: RuleFlag) -> None:
        """The id under which `flag` went to review (see `dismissed`)."""
        self._flags[flag_id] = (flag.zone.id, flag.track_id)
        while len(self._flags) > REMEMBERED_FLAGS:
            self._flags.popitem(last=False)

    def dismissed(self, flag_id: str) -> bool:
        """A reviewer dismissed the flag: its stay (or overflow) no longer re-alerts while it lasts;
        a new stay after it ended flags as usual. False when the stay is over or the flag unknown."""
        where = self._flags.pop(flag_id, None)
        if where is None:
            return False
        zone_id, track_id = where
        zone = self.zones.get(zone_id)
        if track_id is None:
            watch = self.bins.get(zone_id)
            if watch is None or watch.flagged_at is None:
                return False
            watch.dismissed = True
            return True
        track = self.tracks.get(track_id)
        pres = track.presence.get(zone_id) if track is not None else None
        if zone is None or pres is None or pres.flagged_at is None:
            return False
        if zone.rule == "street_stall" or zone.min_count > 1:
            # one occupation, one flag: every object of it is covered by the dismissal
            for t in self.tracks.values():
                other = t.presence.get(zone_id)
                if other is not None and other.flagged_at is not None:
                    other.dismissed = True
        pres.dismissed = True
        return True

    @property
    def watched(self) -> frozenset[str]:
        """Every class a tracked zone watches: the ones worth tracking."""
        out: frozenset[str] = frozenset()
        for z in self.zones.values():
            if z.kind != "bin" or self.env.bin_by_class(z):
                out |= self.env.watched(z)
        return out

    def update(
        self,
        ts: float,
        detections: Sequence[Detection],
        width: int,
        height: int,
        frame: np.ndarray | None = None,
    ) -> list[RuleFlag]:
        """Feed one analysed sample (`frame`: the picture, for bin reference checks); returns the flags it raises."""
        if self.last_ts is not None and ts <= self.last_ts:
            return []  # a late or repeated sample would rewind the dwell clocks
        self.last_ts = ts
        if self.size is not None and self.size != (width, height):
            # the camera's samples changed size (its substream dropped and the main stream stood in,
            # or came back): same picture, other pixels; the tracks follow, so no stay starts again
            self._rescale(width / self.size[0], height / self.size[1])
        self.size = (width, height)
        self.sightings = []
        watched = self.watched
        seen = self._match(ts, _dedupe([d for d in detections if d.label in watched]))
        # forget tracks missed for longer than the grace: an object that comes back is a new stay
        for tid in [tid for tid, t in self.tracks.items() if ts - t.last_seen > self.grace_s]:
            del self.tracks[tid]
        flags: list[RuleFlag] = []
        for zone in self.zones.values():
            if not self.env.active(zone, ts):
                self._pause(zone.id)  # outside its hours nothing accrues
                continue
            if zone.kind == "bin" and not self.env.bin_by_class(zone):
                flag = self._bin(zone, ts, detections, frame)
                if flag is not None:
                    flags.append(flag)
                continue
            flags += self._occupancy(zone, ts, seen, detections, width, height)
        return flags

    def _rescale(self, sx: float, sy: float) -> None:
        for track in self.tracks.values():
            track.det = _scaled(track.det, sx, sy)
            for pres in track.presence.values():
                pres.anchor = _scaled(pres.anchor, sx, sy)

    def _realert_s(self, zone: ZoneSpec) -> float | None:
        return zone.realert_s if zone.realert_s is not None else self.env.config.realert_s

    def _pause(self, zone_id: int) -> None:
        """End every stay and overflow in a zone (window closed, zone changed)."""
        for t in self.tracks.values():
            t.presence.pop(zone_id, None)
        watch = self.bins.get(zone_id)
        if watch is not None:
            watch.reset()

    def _occupancy(
        self,
        zone: ZoneSpec,
        ts: float,
        seen: set[int],
        detections: Sequence[Detection],
        width: int,
        height: int,
    ) -> list[RuleFlag]:
        """Objects that stay: road zones (vehicles, stalls) and bin zones judged by a model class."""
        cfg = self.env.config
        watched = self.env.watched(zone)
        stall = zone.rule == "street_stall"
        people_names = set(cfg.classes.stall_people) if stall else set()
        people = [d for d in detections if d.label in people_names]
        inside: list[Track] = []
        for track in self.tracks.values():
            pres = track.presence.get(zone.id)
            if pres is not None and ts - pres.last_inside > self.grace_s:
                del track.presence[zone.id]  # left (or out of sight) long enough: the stay is over
                pres = None
            if track.id not in seen or track.det.label not in watched:
                continue
            d = track.det
            # a vehicle is where its wheels are; a bin where its middle is
            px, py = ((d.x1 + d.x2) / 2, (d.y1 + d.y2) / 2) if zone.kind == "bin" else d.bottom_centre
            if not point_in_polygon(px / width, py / height, zone.polygon):
                continue
            if pres is None or (stall and iou(pres.anchor, d) < cfg.stall_move_iou):
                pres = track.presence[zone.id] = _Presence(entered_at=ts, last_inside=ts, anchor=d)
            pres.last_inside = ts
            if people_names:
                pres.samples += 1
                pres.with_people += _people_near(d, people, zone, width, height)
            inside.append(track)

        def stayed(t: Track) -> bool:
            p = t.presence[zone.id]
            if ts - p.entered_at < zone.dwell_s:
                return False
            return not people_names or p.with_people >= cfg.stall_people_ratio * p.samples

        qualified = sorted((t for t in inside if stayed(t)), key=lambda t: (t.presence[zone.id].entered_at, t.id))
        realert = self._realert_s(zone)
        if stall or zone.min_count > 1:
            return self._group(zone, ts, qualified, inside, realert)
        flags = []
        for track in qualified:
            pres = track.presence[zone.id]
            if _due(pres, ts, realert):
                _mark(pres, ts)
                others = tuple((t.id, t.det) for t in inside if t is not track)
                flags.append(
                    RuleFlag(self.camera_id, zone, track.id, track.det, pres.entered_at, ts, others, pres.repeats)
                )
            else:
                self._sight(zone, pres, track.det, ts)
        return flags

    def _sight(self, zone: ZoneSpec, pres: _Presence | BinWatch, det: Detection, ts: float) -> None:
        """Report a flagged stay that goes on, once per `sighting_s` since its last flag or sighting."""
        every = self.env.config.sighting_s
        flagged, last = pres.flagged_at, pres.reported_at
        if every is None or flagged is None or ts - (last if last is not None else flagged) < every:
            return
        pres.reported_at = ts
        first = pres.entered_at if isinstance(pres, _Presence) else (pres.over_since or flagged)
        self.sightings.append(RuleSighting(self.camera_id, zone, det, first, flagged, ts))

    def _group(
        self, zone: ZoneSpec, ts: float, qualified: list[Track], inside: list[Track], realert: float | None
    ) -> list[RuleFlag]:
        """Stalls and counted zones: the zone is one occupation, one flag; objects that come while it
        lasts join it silently (a stall is an umbrella, a table and chairs, not three flags)."""
        flagged = [t for t in self.tracks.values() if (p := t.presence.get(zone.id)) and p.flagged_at is not None]
        if flagged:
            lead = min(flagged, key=lambda t: (t.presence[zone.id].entered_at, t.id))
            lead_pres = lead.presence[zone.id]
            for t in qualified:
                pres = t.presence[zone.id]
                if pres.flagged_at is None:  # joins the occupation already flagged
                    pres.flagged_at, pres.repeats = lead_pres.flagged_at, lead_pres.repeats
                    pres.dismissed = lead_pres.dismissed
            if not _due(lead_pres, ts, realert) or lead not in qualified:
                if lead in qualified:
                    self._sight(zone, lead_pres, lead.det, ts)
                return []
        elif len(qualified) < zone.min_count:
            return []
        else:
            lead = qualified[0]
        for t in qualified:
            _mark(t.presence[zone.id], ts)
        pres = lead.presence[zone.id]
        others = tuple((t.id, t.det) for t in inside if t is not lead)
        return [RuleFlag(self.camera_id, zone, lead.id, lead.det, pres.entered_at, ts, others, pres.repeats)]

    def _bin(
        self, zone: ZoneSpec, ts: float, detections: Sequence[Detection], frame: np.ndarray | None
    ) -> RuleFlag | None:
        """The reference check of a bin zone; nothing without a frame or a captured reference."""
        ref = self.env.reference(self.camera_id, zone)
        if frame is None or ref is None:
            return None
        watch = self.bins.setdefault(zone.id, BinWatch())
        reading = watch.read(frame, detections, zone.polygon, ref, self.env.config, zone.threshold)
        self.bin_readings[zone.id] = reading
        flag = watch.step(ts, reading, self.env.config, dwell_s=zone.dwell_s, realert_s=self._realert_s(zone))
        x0, y0, x1, y1 = reading.box
        det = Detection(float(x0), float(y0), float(x1), float(y1), BIN_LABEL, reading.score)
        if not flag:
            if watch.last_over == ts:  # still over its threshold in this very sample
                self._sight(zone, watch, det, ts)
            return None
        since = watch.over_since if watch.over_since is not None else ts
        return RuleFlag(self.camera_id, zone, None, det, since, ts, tuple((None, d) for d in reading.litter), watch.repeats)

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


def _due(pres: _Presence, ts: float, realert_s: float | None) -> bool:
    """Whether a stay that qualifies should flag now: first time, or its re-alert interval passed."""
    if pres.flagged_at is None:
        return True
    return not pres.dismissed and realert_s is not None and ts - pres.flagged_at >= realert_s


def _mark(pres: _Presence, ts: float) -> None:
    if pres.flagged_at == ts:
        return  # marked already in this sample (group flag)
    if pres.flagged_at is not None:
        pres.repeats += 1
    pres.flagged_at = pres.reported_at = ts


def _scaled(d: Detection, sx: float, sy: float) -> Detection:
    return replace(d, x1=d.x1 * sx, y1=d.y1 * sy, x2=d.x2 * sx, y2=d.y2 * sy)


def _people_near(stall: Detection, people: Sequence[Detection], zone: ZoneSpec, width: int, height: int) -> bool:
    """Someone stands in the zone, or within reach of the stall object."""
    reach_x = (stall.x2 - stall.x1) * PEOPLE_REACH
    reach_y = (stall.y2 - stall.y1) * PEOPLE_REACH
    for p in people:
        bx, by = p.bottom_centre
        if point_in_polygon(bx / width, by / height, zone.polygon):
            return True
        if p.x2 >= stall.x1 - reach_x and p.x1 <= stall.x2 + reach_x and p.y2 >= stall.y1 - reach_y and p.y1 <= stall.y2 + reach_y:
            return True
    return False


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
