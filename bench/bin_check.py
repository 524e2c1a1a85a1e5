"""The overflowing-bin reference check against a naive baseline, on real photos.

    python -m bench.bin_check

Scenes (bus.jpg, its cobbled pavement as the bin zone): the reference itself with camera noise,
whole-frame light changes (gamma 0.6-1.6, +-40 grey levels), and bags piled in the zone. For each
method: the score of every scene, the margin between the worst "normal" scene and the pile (the
larger, the safer a threshold), and the cost per check. The baseline is the obvious method: mean
absolute grey-level difference of the zone, scaled to 0-1 by 255. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import cv2
import numpy as np

from fusionhub.analytics.bins import change_score, crop_zone, zone_box
from tests.analytics.scenes import BIN, asset, brightness, camera_noise, gamma, overflowing

REPEAT = 300


def raw_score(ref: np.ndarray, cur: np.ndarray) -> float:
    """The naive baseline: mean absolute grey difference of the zone's box, 0-1."""
    x0, y0, x1, y1 = zone_box(BIN, ref.shape[1], ref.shape[0])
    a = cv2.cvtColor(ref[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.int16)
    b = cv2.cvtColor(cur[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.int16)
    return float(np.abs(a - b).mean()) / 255.0


def timed(fn: Callable[[], float]) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(REPEAT):
        fn()
    return (time.perf_counter() - t0) / REPEAT * 1e3


def main() -> None:
    bus = cv2.resize(asset("bus.jpg"), (405, 540), interpolation=cv2.INTER_AREA)
    normal = {"noise": camera_noise(bus, 1)}
    for g in (0.6, 0.8, 1.3, 1.6):
        normal[f"gamma {g}"] = camera_noise(gamma(bus, g), 2)
    for b in (-40, 40):
        normal[f"bright {b:+d}"] = camera_noise(brightness(bus, b), 3)
    pile = camera_noise(overflowing(bus, BIN), 4)
    ref = crop_zone(bus, BIN)

    def structural(frame: np.ndarray) -> float:
        return change_score(ref, crop_zone(frame, BIN, ref.size))

    methods = {"structural (log-gradient NCC)": structural, "baseline (raw grey diff)": lambda f: raw_score(bus, f)}
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'scene':<14}" + "".join(f"{name:>32}" for name in methods))
    for scene, frame in [*normal.items(), ("pile of bags", pile)]:
        print(f"{scene:<14}" + "".join(f"{fn(frame):>32.3f}" for fn in methods.values()))
    result = {}
    for name, fn in methods.items():
        worst = max(fn(f) for f in normal.values())
        margin = fn(pile) - worst
        ms = timed(lambda fn=fn: fn(pile))
        result[name] = (worst, margin, ms)
        print(f"{name}: worst normal {worst:.3f}, pile {fn(pile):.3f}, margin {margin:+.3f}, {ms:.3f} ms per check")
    s_margin, b_margin = result["structural (log-gradient NCC)"][1], result["baseline (raw grey diff)"][1]
    print(json.dumps({
        "structural_margin": round(s_margin, 3),
        "baseline_margin": round(b_margin, 3),
        "margin_ratio_vs_baseline": round(s_margin / b_margin, 1) if b_margin > 0 else None,
        "structural_ms": round(result["structural (log-gradient NCC)"][2], 3),
        "baseline_ms": round(result["baseline (raw grey diff)"][2], 3),
        "loadavg_1m": round(load[0], 2),
    }))


if __name__ == "__main__":
    main()
