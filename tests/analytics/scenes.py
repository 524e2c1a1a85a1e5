"""Scenes built from real photos (ultralytics' bus.jpg and zidane.jpg) for the rule tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fusionhub.analytics.bins import zone_box

# the kerb-side lane the bus of bus.jpg stands in (normalised)
LANE = [(0.0, 0.6), (1.0, 0.6), (1.0, 0.8), (0.0, 0.8)]
# a stretch of cobbled pavement in front of the bus, clear of people: where a bin stands
BIN = [(0.45, 0.80), (0.80, 0.80), (0.80, 0.98), (0.45, 0.98)]


def asset(name: str) -> np.ndarray:
    import ultralytics  # only to find its pictures; the runtime never imports it

    image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / name))
    assert image is not None, name
    return image


def gamma(frame: np.ndarray, g: float) -> np.ndarray:
    """The whole picture through a gamma curve (dusk: g > 1, low sun: g < 1)."""
    lut = np.array([255.0 * (i / 255.0) ** g for i in range(256)]).round().astype(np.uint8)
    return cv2.LUT(frame, lut)


def brightness(frame: np.ndarray, delta: int) -> np.ndarray:
    """The whole picture brighter or darker by `delta` grey levels (clipped)."""
    return np.clip(frame.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def camera_noise(frame: np.ndarray, seed: int, sigma: float = 3.0, quality: int = 70) -> np.ndarray:
    """Sensor noise and a fresh JPEG round trip: the same scene as a camera sends it twice."""
    rng = np.random.default_rng(seed)
    noisy = np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def overflowing(frame: np.ndarray, polygon: list[tuple[float, float]]) -> np.ndarray:
    """Bags piled in and beside the bin zone: garment pieces of the real photos (suit jackets from
    zidane.jpg, the sheepskin coat and jeans from bus.jpg) pasted as rounded lumps."""
    zidane, bus = asset("zidane.jpg"), asset("bus.jpg")
    pieces = [zidane[470:715, 110:330], zidane[470:715, 800:1010], bus[590:780, 70:220], bus[800:950, 90:200],
              zidane[480:700, 380:560]]
    # (x, y, w, h) of each lump as shares of the zone's box
    spots = [(0.0, 0.35, 0.38, 0.65), (0.3, 0.25, 0.35, 0.75), (0.62, 0.3, 0.38, 0.7), (0.15, 0.0, 0.3, 0.45),
             (0.5, 0.0, 0.3, 0.4)]
    out = frame.copy()
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = zone_box(polygon, w, h)
    zw, zh = x1 - x0, y1 - y0
    for piece, (fx, fy, fw, fh) in zip(pieces, spots, strict=True):
        px, py = x0 + int(zw * fx), y0 + int(zh * fy)
        pw, ph = min(max(4, int(zw * fw)), x1 - px), min(max(4, int(zh * fh)), y1 - py)
        lump = cv2.resize(piece, (pw, ph), interpolation=cv2.INTER_AREA)
        mask = np.zeros((ph, pw), np.uint8)
        cv2.ellipse(mask, (pw // 2, ph // 2), (pw // 2, ph // 2), 0, 0, 360, 1, -1)
        region = out[py : py + ph, px : px + pw]
        region[mask > 0] = lump[mask > 0]
    return out
