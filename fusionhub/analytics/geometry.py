"""Plane geometry the rules need: polygon area, point in polygon, box overlap. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence

from fusionhub.analytics.detection import Detection


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
