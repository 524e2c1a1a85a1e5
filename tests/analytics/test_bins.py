"""The bin reference check on its own: the change score on real photos, and the overflow clock
(dwell, grace, re-alert, occlusion, the learnt noise level)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fusionhub.analytics.bins import BinReading, BinWatch, change_score, crop_zone, zone_box
from fusionhub.analytics.detection import Detection
from fusionhub.analytics.ruleconfig import RulesConfig
from tests.analytics import scenes
from tests.analytics.scenes import BIN

CFG = RulesConfig()


def test_score_is_zero_for_the_same_picture_and_high_for_a_pile(bus_frame: np.ndarray) -> None:
    ref = crop_zone(bus_frame, BIN)
    assert change_score(ref, crop_zone(bus_frame, BIN, ref.size)) == 0.0
    assert change_score(ref, crop_zone(scenes.camera_noise(bus_frame, 1), BIN, ref.size)) < 0.05
    assert change_score(ref, crop_zone(scenes.overflowing(bus_frame, BIN), BIN, ref.size)) > 0.6
    # the same scene sampled at another resolution still compares (crops share the working size)
    for size in ((203, 270), (810, 1080)):
        other = cv2.resize(scenes.asset("bus.jpg"), size, interpolation=cv2.INTER_AREA)
        assert change_score(ref, crop_zone(other, BIN, ref.size)) < 0.1
    with pytest.raises(ValueError):
        change_score(ref, crop_zone(bus_frame, BIN, (20, 20)))


def test_zone_box_clips_to_the_frame() -> None:
    assert zone_box([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)], 640, 360) == (0, 0, 640, 360)
    assert zone_box([(0.5, 0.5), (0.5001, 0.5), (0.5001, 0.5001)], 640, 360) == (320, 180, 321, 181)


def reading(score: float, *, occluded: bool = False, threshold: float = 0.3) -> BinReading:
    return BinReading(score, score, (), occluded, threshold, (0, 0, 10, 10))


def run(
    watch: BinWatch, scores: list[float | None], *, dwell: float = 5, realert: float | None = None, t0: int = 0
) -> list[float]:
    """Feed 1-s samples from `t0` (None: occluded); the times a flag was due."""
    out = []
    for t, s in enumerate(scores, start=t0):
        r = reading(0.9, occluded=True) if s is None else reading(s, threshold=watch.threshold(CFG, None))
        if watch.step(float(t), r, CFG, dwell_s=dwell, realert_s=realert):
            out.append(float(t))
    return out


def test_overflow_must_last_the_dwell_and_flags_once() -> None:
    assert run(BinWatch(), [0.0] * 5 + [0.8] * 4 + [0.0] * 20) == []  # shorter than the dwell
    assert run(BinWatch(), [0.0] * 5 + [0.8] * 60) == [10.0]


def test_short_dips_do_not_end_an_overflow_but_emptying_does() -> None:
    watch = BinWatch()
    # a dip of 3 s (under the 10 s grace) keeps it one overflow
    assert run(watch, [0.8] * 8 + [0.1] * 3 + [0.8] * 20) == [5.0]
    watch = BinWatch()
    # emptied for longer than the grace: the next overflow flags again
    assert run(watch, [0.8] * 8 + [0.05] * 15 + [0.8] * 10) == [5.0, 28.0]


def test_occluded_samples_neither_count_nor_reset() -> None:
    assert run(BinWatch(), [None] * 30) == []  # a van parked in front is not an overflow
    assert run(BinWatch(), [0.8] * 3 + [None] * 20 + [0.8] * 3) == [23.0]


def test_realert_while_it_stays_full() -> None:
    watch = BinWatch()
    assert run(watch, [0.8] * 200, realert=60) == [5.0, 65.0, 125.0, 185.0]
    assert watch.repeats == 3


def test_a_dismissed_overflow_does_not_realert_until_the_bin_is_emptied() -> None:
    watch = BinWatch()
    assert run(watch, [0.8] * 10, realert=60) == [5.0]
    watch.dismissed = True  # what CameraRules.dismissed sets for a bin zone's flag
    assert run(watch, [0.8] * 190, realert=60, t0=10) == []  # 65, 125, 185 were due
    # emptied past the grace: a new overflow is a new flag, and re-alerts again
    assert run(watch, [0.05] * 15 + [0.8] * 80, realert=60, t0=200) == [220.0, 280.0]


def test_threshold_rises_above_a_noisy_zone() -> None:
    watch = BinWatch()
    rng = np.random.default_rng(3)
    # a zone with trees moving in the wind scores 0.15-0.25 when nothing is wrong
    noise = list(np.clip(rng.normal(0.2, 0.03, 200), 0, 1))
    assert run(watch, noise) == []
    assert 0.3 < watch.threshold(CFG, None) < 0.5
    assert watch.threshold(CFG, 0.6) == pytest.approx(0.6)  # a zone's own base threshold is the floor


def test_litter_in_the_zone_adds_weight(bus_frame: np.ndarray) -> None:
    ref = crop_zone(bus_frame, BIN)
    x0, y0, x1, y1 = zone_box(BIN, bus_frame.shape[1], bus_frame.shape[0])
    bottle = Detection(x0 + 10, y0 + 10, x0 + 30, y0 + 50, "bottle", 0.6)
    bag = Detection(x0 + 40, y0 + 20, x0 + 90, y0 + 60, "handbag", 0.5)
    far = Detection(0, 0, 20, 20, "cup", 0.8)  # not in the zone
    r = BinWatch().read(bus_frame, [bottle, bag, far], BIN, ref, CFG, None)
    assert r.change == 0.0 and r.score == pytest.approx(2 * CFG.litter_weight)
    assert r.litter == (bottle, bag) and not r.occluded
    walker = Detection(x0, y0 - 120, x1, y1, "person", 0.9)  # stands in front, head above the zone
    assert BinWatch().read(bus_frame, [walker], BIN, ref, CFG, None).occluded
    lump = Detection(x0, y0 + 5, x1, y1, "person", 0.4)  # a lump of bags taken for a person: not in front
    assert not BinWatch().read(bus_frame, [lump], BIN, ref, CFG, None).occluded
