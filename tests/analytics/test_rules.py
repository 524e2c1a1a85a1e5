"""The dwell rule, zones and the tracker: pure logic, fed synthetic samples ~1 s apart."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fusionhub.analytics.detection import Detection
from fusionhub.analytics.rules import CameraRules, ZoneSpec, point_in_polygon

W, H = 1000, 500
# the lower half of the frame is the road
ROAD = ZoneSpec(id=7, name="lane", polygon=[(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)], dwell_s=5.0)


def car(x: float = 100, y_bottom: float = 400, label: str = "car", w: float = 120, h: float = 80, conf: float = 0.9) -> Detection:
    return Detection(x, y_bottom - h, x + w, y_bottom, label, conf)


def run(rules: CameraRules, samples: list[list[Detection]], t0: float = 1000.0, step: float = 1.0) -> list[tuple[float, int]]:
    """Feed samples `step` s apart; return (ts, track id) of every flag raised."""
    out = []
    for i, dets in enumerate(samples):
        ts = t0 + i * step
        out += [(ts, f.track_id) for f in rules.update(ts, dets, W, H)]
    return out


def test_bottom_centre_decides_inside() -> None:
    # the box reaches into the zone but stands above it: outside
    above = Detection(100, 100, 200, 240, "car", 0.9)
    # mostly above the line, but its wheels are in the zone: inside
    straddling = Detection(300, 100, 400, 260, "car", 0.9)
    rules = CameraRules(1, [ROAD.model_copy(update={"dwell_s": 0.0})])
    flags = rules.update(1.0, [above, straddling], W, H)
    assert [f.detection for f in flags] == [straddling]


def test_point_in_polygon_concave() -> None:
    u_shape = [(0, 0), (1, 0), (1, 1), (0.6, 1), (0.6, 0.3), (0.4, 0.3), (0.4, 1), (0, 1)]
    assert point_in_polygon(0.2, 0.8, u_shape)
    assert not point_in_polygon(0.5, 0.8, u_shape)  # in the notch
    assert point_in_polygon(0.5, 0.1, u_shape)
    assert not point_in_polygon(1.2, 0.5, u_shape)


def test_no_flag_before_dwell() -> None:
    rules = CameraRules(1, [ROAD])
    assert run(rules, [[car()]] * 5) == []  # 0..4 s inside, dwell is 5 s


def test_one_flag_after_dwell_and_none_while_it_stays() -> None:
    rules = CameraRules(1, [ROAD])
    flags = run(rules, [[car()]] * 30)
    assert flags == [(1005.0, flags[0][1])]


def test_flag_carries_zone_first_seen_and_box() -> None:
    rules = CameraRules(3, [ROAD])
    flags = []
    for i in range(7):
        flags += rules.update(50.0 + i, [car(x=100 + i)], W, H)
    (f,) = flags
    assert (f.camera_id, f.zone.id, f.zone.name, f.first_seen_at, f.ts) == (3, 7, "lane", 50.0, 55.0)
    assert f.detection.x1 == 105 and f.detection.label == "car"


def test_outside_zone_never_flags() -> None:
    rules = CameraRules(1, [ROAD])
    assert run(rules, [[car(y_bottom=200)]] * 30) == []


def test_leaving_resets_dwell_and_return_flags_again() -> None:
    rules = CameraRules(1, [ROAD], grace_s=3.5)
    stay = [[car()]] * 8
    away = [[car(y_bottom=200)]] * 6  # drives out of the zone (still visible) for 6 s
    flags = run(rules, stay + away + stay)
    assert [ts for ts, _ in flags] == [1005.0, 1000.0 + 14 + 5]


def test_disappearing_past_grace_resets_and_return_flags_again() -> None:
    rules = CameraRules(1, [ROAD], grace_s=3.5)
    flags = run(rules, [[car()]] * 8 + [[]] * 5 + [[car()]] * 8)
    assert [ts for ts, _ in flags] == [1005.0, 1013.0 + 5]
    assert flags[0][1] != flags[1][1]  # a new stay is a new track


def test_short_dip_out_of_zone_does_not_reset() -> None:
    rules = CameraRules(1, [ROAD], grace_s=3.5)
    flags = run(rules, [[car()]] * 3 + [[car(y_bottom=240)]] + [[car()]] * 3)
    assert [ts for ts, _ in flags] == [1005.0]  # dwell counted from the first entry


def test_brief_missed_detections_keep_the_track_and_its_dwell() -> None:
    rules = CameraRules(1, [ROAD], grace_s=3.5)
    samples = [[car()], [car()], [], [], [car()], [], [car()], [car()], [car()]]
    flags = run(rules, samples)
    assert [ts for ts, _ in flags] == [1006.0]  # 5 s after the first sighting, on a seen sample
    assert len(rules.tracks) == 1


def test_stays_flagged_across_misses() -> None:
    rules = CameraRules(1, [ROAD], grace_s=3.5)
    samples = [[car()]] * 7 + ([[]] * 2 + [[car()]]) * 5
    assert len(run(rules, samples)) == 1


def test_jittering_box_keeps_identity() -> None:
    rules = CameraRules(1, [ROAD])
    samples = [[car(x=100 + (7 if i % 2 else -7), y_bottom=400 + (i % 3))] for i in range(10)]
    flags = run(rules, samples)
    assert len(flags) == 1 and len(rules.tracks) == 1


def test_class_flip_is_the_same_vehicle() -> None:
    rules = CameraRules(1, [ROAD])
    samples = [[car(label="bus" if i % 2 else "truck", w=300, h=200)] for i in range(8)]
    flags = run(rules, samples)
    assert len(flags) == 1


def test_two_vehicles_two_flags() -> None:
    rules = CameraRules(1, [ROAD])
    flags = run(rules, [[car(x=100), car(x=600)]] * 8)
    assert len(flags) == 2
    assert {ts for ts, _ in flags} == {1005.0}
    assert len({tid for _, tid in flags}) == 2


def test_second_vehicle_arriving_later_flags_later() -> None:
    rules = CameraRules(1, [ROAD])
    samples = [[car(x=100)]] * 3 + [[car(x=100), car(x=600)]] * 8
    assert [ts for ts, _ in run(rules, samples)] == [1005.0, 1008.0]


def test_duplicate_box_of_one_vehicle_flags_once() -> None:
    rules = CameraRules(1, [ROAD])
    samples = [[car(label="bus", w=300, h=200, conf=0.9), car(label="truck", w=296, h=198, conf=0.5)]] * 8
    assert len(run(rules, samples)) == 1


@pytest.mark.parametrize("label", ["person", "bicycle", "dog", "traffic light"])
def test_non_vehicles_ignored(label: str) -> None:
    rules = CameraRules(1, [ROAD])
    assert run(rules, [[car(label=label)]] * 10) == []


@pytest.mark.parametrize("label", ["car", "bus", "truck", "motorcycle"])
def test_every_vehicle_class_counts(label: str) -> None:
    rules = CameraRules(1, [ROAD])
    assert len(run(rules, [[car(label=label)]] * 10)) == 1


def test_zone_classes_override_defaults() -> None:
    bins = ROAD.model_copy(update={"classes": ["person"]})
    rules = CameraRules(1, [bins])
    assert run(rules, [[car(label="car")]] * 10) == []
    rules = CameraRules(1, [bins])
    assert len(run(rules, [[car(label="person")]] * 10)) == 1


def test_two_zones_flag_independently() -> None:
    left = ZoneSpec(id=1, name="left", polygon=[(0, 0.5), (0.5, 0.5), (0.5, 1), (0, 1)], dwell_s=2)
    right = ZoneSpec(id=2, name="right", polygon=[(0.5, 0.5), (1, 0.5), (1, 1), (0.5, 1)], dwell_s=4)
    rules = CameraRules(1, [left, right])
    flags = []
    for i in range(6):
        flags += rules.update(float(i), [car(x=100), car(x=700)], W, H)
    assert [(f.zone.id, f.ts) for f in flags] == [(1, 2.0), (2, 4.0)]


def test_out_of_order_sample_ignored() -> None:
    rules = CameraRules(1, [ROAD])
    run(rules, [[car()]] * 4)
    assert rules.update(999.0, [car()], W, H) == []
    assert rules.update(1003.0, [car()], W, H) == []  # same ts again
    assert len(rules.update(1005.0, [car()], W, H)) == 1


def test_changed_zone_restarts_dwell_but_unchanged_does_not() -> None:
    rules = CameraRules(1, [ROAD])
    run(rules, [[car()]] * 4)  # 1000..1003 inside
    rules.set_zones([ROAD])  # same definition: timers continue
    assert len(rules.update(1005.0, [car()], W, H)) == 1
    rules = CameraRules(1, [ROAD])
    run(rules, [[car()]] * 4)
    rules.set_zones([ROAD.model_copy(update={"dwell_s": 5.5})])
    assert rules.update(1005.0, [car()], W, H) == []  # counted afresh from 1005
    assert rules.update(1007.0, [car()], W, H) == []
    assert rules.update(1010.0, [car()], W, H) == []
    assert len(rules.update(1010.5, [car()], W, H)) == 1


@pytest.mark.parametrize(
    "polygon",
    [
        [(0, 0), (1, 1)],  # too few points
        [(0, 0), (1.2, 0), (1, 1)],  # out of 0–1
        [(0, 0), (-0.1, 1), (1, 1)],
        [(0, 0), (0.5, 0.5), (1, 1)],  # no area
    ],
)
def test_bad_polygons_rejected(polygon: list[tuple[float, float]]) -> None:
    with pytest.raises(ValidationError):
        ZoneSpec(id=1, name="z", polygon=polygon)


def test_zone_defaults() -> None:
    z = ZoneSpec(id=1, name="z", polygon=[(0, 0), (1, 0), (1, 1)])
    assert z.kind == "road" and z.dwell_s == 60 and z.rule == "occupied_road"
    assert z.watched == {"car", "bus", "truck", "motorcycle"}
    with pytest.raises(ValidationError):
        ZoneSpec(id=1, name="z", polygon=[(0, 0), (1, 0), (1, 1)], colour="red")  # type: ignore[call-arg]


def _half(d: Detection) -> Detection:
    return Detection(d.x1 / 2, d.y1 / 2, d.x2 / 2, d.y2 / 2, d.label, d.confidence)


@pytest.mark.parametrize("switch_at", [2, 8])  # before the dwell is up, and after the flag
def test_a_camera_switching_between_its_streams_is_one_stay(switch_at: int) -> None:
    """A camera analysed on its substream (half size here) switches to its main stream while the
    substream is down, and back: the same parked car, in other pixels, is still one stay."""
    rules = CameraRules(1, [ROAD])
    flags = []
    for i in range(30):
        on_main = switch_at <= i < switch_at + 10
        det, size = (car(), (W, H)) if on_main else (_half(car()), (W // 2, H // 2))
        flags += [(1000.0 + i, f.track_id) for f in rules.update(1000.0 + i, [det], *size)]
    assert flags == [(1005.0, flags[0][1])]
