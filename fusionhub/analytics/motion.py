"""The motion gate: skip inference for a frame that barely differs from the camera's last analysed one.

Most city cameras watch a still street most of the time. Comparing a 64×36 grey thumbnail of
each sample with the one of the last frame that went through the detector costs ~0.1 ms (the
thumbnail itself is best computed where the sample is decoded: see AnalyticsHub.thumbnailer); when
fewer than `min_changed` of its pixels moved by more than `pixel_delta` grey levels, the frame
is taken to show what the last analysed one showed, and the rules get the same detections again
(so dwell timers keep running for a parked vehicle). The reference is the last ANALYSED frame,
never the last skipped one, so a slow creep adds up until it passes the gate; `refresh_s`
forces an analysis now and then however still the picture looks.

Only the part of the thumbnail around the camera's zones is compared (`zones_window`): the box
around every zone, widened by `analytics.motion_zone_margin` of the picture on each side and twice
that above (what stands in a zone rises above it). Trees in the wind, the sky, traffic on the far
side of the street do not wake the detector for a road zone on the near side; what enters a zone
crosses that box first. The detector still sees the whole frame when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

THUMB_SIZE = (64, 36)  # width, height: 16:9 like most cameras; the gate only compares, never detects


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the motion gate (see AnalyticsConfig for their meaning and bounds)."""

    enabled: bool = True
    pixel_delta: int = 12
    min_changed: float = 0.003
    refresh_s: float = 30.0


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The 64×36 grey thumbnail of a BGR frame (area-averaged, so sensor noise mostly cancels out).

    Grey first, then averaged: one channel to average instead of three, 90 µs for a 640×360
    sample here against 180 µs the other way round, for a thumbnail within one grey level of it.
    """
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA)


Window = tuple[slice, slice]  # rows, columns of the thumbnail


def zones_window(polygons: Iterable[Sequence[tuple[float, float]]], margin: float) -> Window | None:
    """The thumbnail pixels around every zone (normalised polygons), widened by `margin` of the
    picture on each side and twice that above; None (the whole thumbnail) without zones."""
    points = [point for polygon in polygons for point in polygon]
    if not points:
        return None
    xs, ys = [x for x, _ in points], [y for _, y in points]
    w, h = THUMB_SIZE
    x0 = max(0, math.floor((min(xs) - margin) * w))
    x1 = min(w, max(x0 + 1, math.ceil((max(xs) + margin) * w)))
    y0 = max(0, math.floor((min(ys) - 2 * margin) * h))
    y1 = min(h, max(y0 + 1, math.ceil((max(ys) + margin) * h)))
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return None
    return slice(y0, y1), slice(x0, x1)


def changed_fraction(a: np.ndarray, b: np.ndarray, pixel_delta: int) -> float:
    """Share of thumbnail pixels that differ by more than `pixel_delta` grey levels."""
    return float(np.count_nonzero(cv2.absdiff(a, b) > pixel_delta)) / a.size


class MotionGate:
    """One camera's gate: `reference` is the thumbnail of its last analysed frame."""

    def __init__(self, settings: GateSettings, window: Window | None = None) -> None:
        self.settings = settings
        self.window = window  # the part of the thumbnail compared (zones_window); None: all of it
        self._reference: np.ndarray | None = None
        self._reference_shape: tuple[int, ...] = ()
        self._reference_ts = 0.0

    def still(self, ts: float, frame: np.ndarray, thumb: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        """(True, None) when `frame` can be skipped; else (False, its thumbnail, to pass to `analysed`).

        `thumb`: `thumbnail(frame)` if the caller has it already (computed off the loop); one of
        another shape or type is not trusted, and the gate computes its own."""
        s = self.settings
        if not s.enabled:
            return False, None
        if thumb is None or thumb.shape != (THUMB_SIZE[1], THUMB_SIZE[0]) or thumb.dtype != np.uint8:
            thumb = thumbnail(frame)
        if (
            self._reference is None
            or frame.shape != self._reference_shape
            or ts - self._reference_ts >= s.refresh_s
            or ts < self._reference_ts
        ):
            return False, thumb
        now, before = thumb, self._reference
        if self.window is not None:
            now, before = now[self.window], before[self.window]
        if changed_fraction(now, before, s.pixel_delta) >= s.min_changed:
            return False, thumb
        return True, None

    def analysed(self, ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        """A frame went through the detector: it becomes the reference."""
        if not self.settings.enabled:
            return
        self._reference = thumb if thumb is not None else thumbnail(frame)
        self._reference_shape = frame.shape
        self._reference_ts = ts

    def reset(self) -> None:
        """Forget the reference (zones changed, or the next frame must be analysed whatever it shows)."""
        self._reference = None
