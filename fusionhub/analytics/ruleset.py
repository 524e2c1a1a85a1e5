"""What the rules of every camera share: tuning, class map, the hub's time zone, the model's classes
and the bin zones' reference pictures (kept as small crops, not whole frames)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from fusionhub.analytics import windows
from fusionhub.analytics.bins import ZoneCrop, crop_zone, read_reference
from fusionhub.analytics.errors import ModelNotFoundError
from fusionhub.analytics.models import read_model_info
from fusionhub.analytics.ruleconfig import RulesConfig
from fusionhub.analytics.zones import ZoneSpec, watched_classes

log = logging.getLogger(__name__)


def model_classes(onnx: Path) -> frozenset[str] | None:
    """The class names in a model's sidecar; None when the hub cannot read it (remote workers only)."""
    try:
        return frozenset(read_model_info(onnx).classes)
    except ModelNotFoundError:
        return None


@dataclass(frozen=True)
class _Reference:
    path: str
    polygon: tuple[tuple[float, float], ...]
    crop: ZoneCrop


class RuleEnv:
    """Shared rule context; the hub owns one and hands it to each camera's rules."""

    def __init__(self, config: RulesConfig | None = None, *, timezone: str = "UTC") -> None:
        self.config = config or RulesConfig()
        self.tz = ZoneInfo(timezone)
        # the configured model's class names (from its sidecar); None while unknown
        self.model_classes: frozenset[str] | None = None
        self._refs: dict[tuple[int, int], _Reference] = {}

    def watched(self, zone: ZoneSpec) -> frozenset[str]:
        """The classes a zone watches under this class map."""
        return watched_classes(zone, self.config.classes)

    def bin_by_class(self, zone: ZoneSpec) -> bool:
        """Whether a bin zone is judged by a model class (zone classes given, or the model has an
        overflowing-bin class) rather than by the reference check."""
        if zone.classes:
            return True
        return self.model_classes is not None and bool(self.model_classes & set(self.config.classes.overflowing_bin))

    def active(self, zone: ZoneSpec, ts: float) -> bool:
        """Whether the zone's time windows (in the hub's time zone) include `ts`."""
        return windows.active(zone.time_windows, ts, self.tz)

    # -- bin references ---------------------------------------------------------------------

    def put_reference(self, camera_id: int, zone_id: int, path: str, frame: np.ndarray, polygon: Iterable[tuple[float, float]]) -> None:
        """Keep a zone's reference (the crop of `frame`, stored at `path`); replaces an older one."""
        poly = tuple((float(x), float(y)) for x, y in polygon)
        self._refs[(camera_id, zone_id)] = _Reference(path, poly, crop_zone(frame, poly))

    def reference(self, camera_id: int, zone: ZoneSpec) -> ZoneCrop | None:
        """The zone's reference crop when it matches the zone's current reference path and polygon."""
        ref = self._refs.get((camera_id, zone.id))
        if ref is None or ref.path != zone.reference or ref.polygon != tuple(zone.polygon):
            return None
        return ref.crop

    def drop_references(self, camera_id: int, keep: Iterable[int] = ()) -> None:
        """Forget a camera's references except those of the zones in `keep`."""
        kept = set(keep)
        for key in [k for k in self._refs if k[0] == camera_id and k[1] not in kept]:
            del self._refs[key]

    async def load_references(self, camera_id: int, zones: Iterable[ZoneSpec], data_dir: Path) -> None:
        """Load (in a thread) the stored references of a camera's bin zones that are not loaded yet."""
        zones = list(zones)
        self.drop_references(camera_id, [z.id for z in zones if z.reference])
        for zone in zones:
            if zone.kind != "bin" or zone.reference is None or self.reference(camera_id, zone) is not None:
                continue
            image = await asyncio.to_thread(read_reference, data_dir, zone.reference)
            if image is None:
                log.warning("camera %d: reference picture %s of zone %d is missing; capture it again",
                            camera_id, zone.reference, zone.id)
                continue
            self.put_reference(camera_id, zone.id, zone.reference, image, zone.polygon)
