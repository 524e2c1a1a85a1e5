"""Per-zone rules beyond dwell: time windows, least count, re-alert, the street-stall rule and the
class map. Pure logic fed synthetic samples ~1 s apart (the real-picture tests: test_real_scenes.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from fusionhub.analytics.detection import Detection
from fusionhub.analytics.ruleconfig import ClassMap, RulesConfig
from fusionhub.analytics.rules import CameraRules, RuleFlag, ZoneSpec
from fusionhub.analytics.ruleset import RuleEnv
from fusionhub.analytics.windows import active, parse_window

W, H = 1000, 500
ROAD = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def box(label: str = "car", x: float = 100, y_bottom: float = 400, w: float = 120, h: float = 80, conf: float = 0.9) -> Detection:
    return Detection(x, y_bottom - h, x + w, y_bottom, label, conf)


def local(hh: int, mm: int, ss: int = 0) -> float:
    return datetime(2025, 3, 3, hh, mm, ss, tzinfo=SHANGHAI).timestamp()


def feed(rules: CameraRules, samples: list[list[Detection]], t0: float, step: float = 1.0) -> list[RuleFlag]:
    out: list[RuleFlag] = []
    for i, dets in enumerate(samples):
        out += rules.update(t0 + i * step, dets, W, H)
    return out


# -- time windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("07:00-19:00", ["07:00", "12:30", "18:59"], ["06:59", "19:00", "23:00", "00:00"]),
        ("22:00-06:00", ["22:00", "23:59", "00:00", "05:59"], ["06:00", "12:00", "21:59"]),
        ("00:00-24:00", ["00:00", "12:00", "23:59"], []),
    ],
)
def test_windows_in_the_hub_time_zone(text: str, inside: list[str], outside: list[str]) -> None:
    window = parse_window(text)
    for hhmm, expected in [(t, True) for t in inside] + [(t, False) for t in outside]:
        hh, mm = (int(p) for p in hhmm.split(":"))
        assert active([window], local(hh, mm), SHANGHAI) is expected, (text, hhmm)
    # the same instant is 8 hours earlier in UTC: the zone decides by the hub's clock, not UTC's
    assert active([parse_window("07:00-19:00")], local(8, 0), ZoneInfo("UTC")) is False


@pytest.mark.parametrize("text", ["7:00-19:00", "07:00-19:60", "07:00", "25:00-26:00", "07:00-07:00", "08:00-24:30"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)
    with pytest.raises(ValidationError):
        ZoneSpec(id=1, name="z", polygon=ROAD, windows=[text])


def test_nothing_accrues_or_flags_outside_the_window() -> None:
    env = RuleEnv(timezone="Asia/Shanghai")
    zone = ZoneSpec(id=1, name="no parking 07-19", polygon=ROAD, dwell_s=300, windows=["07:00-19:00"])
    rules = CameraRules(1, [zone], env=env)
    # parked from 06:50: ten minutes before the window opens count for nothing
    flags = feed(rules, [[box()]] * 1500, local(6, 50), step=1.0)
    assert [datetime.fromtimestamp(f.ts, SHANGHAI).strftime("%H:%M:%S") for f in flags] == ["07:05:00"]
    assert flags[0].first_seen_at == local(7, 0)


def test_a_stay_across_the_window_end_stops_and_a_night_zone_crosses_midnight() -> None:
    env = RuleEnv(timezone="Asia/Shanghai")
    night = ZoneSpec(id=2, name="night market lane", polygon=ROAD, dwell_s=60, windows=["22:00-06:00"])
    rules = CameraRules(1, [night], env=env)
    assert feed(rules, [[box()]] * 600, local(21, 50), step=1.0) == []  # 21:50-21:59:59: closed
    flags = feed(rules, [[box()]] * 180, local(23, 59), step=1.0)  # across midnight
    assert len(flags) == 1 and flags[0].first_seen_at == local(23, 59)
    rules = CameraRules(1, [night], env=env)
    assert feed(rules, [[box()]] * 600, local(6, 0), step=1.0) == []  # after 06:00 nothing


# -- least count, re-alert -------------------------------------------------------------------------


def test_min_count_needs_that_many_and_flags_the_group_once() -> None:
    zone = ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5, min_count=2)
    rules = CameraRules(1, [zone])
    assert feed(rules, [[box(x=100)]] * 10, 0.0) == []  # one car is not enough
    flags = feed(rules, [[box(x=100), box(x=600)]] * 10, 100.0)
    assert len(flags) == 1
    assert flags[0].ts == 105.0 and len(flags[0].others) == 1
    # a third that comes while they stay joins the occupation: no second flag
    assert feed(rules, [[box(x=100), box(x=600), box(x=350)]] * 8, 110.0) == []
    # all gone past the grace, then two again: a new occupation
    assert feed(rules, [[]] * 5, 118.0) == []
    assert [f.ts for f in feed(rules, [[box(x=100), box(x=600)]] * 8, 130.0)] == [135.0]


def test_realert_while_it_stays_and_only_then() -> None:
    zone = ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5, realert_s=60)
    rules = CameraRules(1, [zone])
    flags = feed(rules, [[box()]] * 200, 0.0)
    assert [(f.ts, f.repeat) for f in flags] == [(5.0, 0), (65.0, 1), (125.0, 2), (185.0, 3)]
    assert len({f.track_id for f in flags}) == 1 and {f.first_seen_at for f in flags} == {0.0}
    # the hub-wide default applies where the zone sets none
    env = RuleEnv(RulesConfig(realert_s=100))
    rules = CameraRules(1, [zone.model_copy(update={"realert_s": None})], env=env)
    assert [f.ts for f in feed(rules, [[box()]] * 200, 0.0)] == [5.0, 105.0]


def test_a_dismissed_stay_does_not_realert_but_the_next_stay_flags() -> None:
    """A reviewer dismissed the flag (say, a permitted delivery van): with re-alert on, that van
    must not come back to the review queue every minute while it stays; the next one still flags."""
    zone = ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5, realert_s=60)
    rules = CameraRules(1, [zone])
    (flag,) = feed(rules, [[box()]] * 10, 0.0)
    rules.remember("f-1", flag)
    assert rules.dismissed("f-1") is True
    assert feed(rules, [[box()]] * 190, 10.0) == []  # re-alerts were due at 65, 125, 185
    assert rules.dismissed("f-1") is False  # a dismissal is applied once
    assert feed(rules, [[]] * 5, 200.0) == []  # it drives off
    assert [(f.ts, f.repeat) for f in feed(rules, [[box(x=600)]] * 10, 205.0)] == [(210.0, 0)]
    # without the dismissal the same stay re-alerts (the control)
    rules = CameraRules(1, [zone])
    assert [f.ts for f in feed(rules, [[box()]] * 200, 0.0)] == [5.0, 65.0, 125.0, 185.0]


def test_a_dismissal_of_a_stay_that_is_over_or_unknown_changes_nothing() -> None:
    zone = ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5, realert_s=60)
    rules = CameraRules(1, [zone])
    (flag,) = feed(rules, [[box()]] * 10, 0.0)
    rules.remember("f-1", flag)
    assert feed(rules, [[]] * 5, 10.0) == []  # gone before the review
    assert rules.dismissed("f-1") is False and rules.dismissed("never-raised") is False
    assert [f.ts for f in feed(rules, [[box()]] * 10, 15.0)] == [20.0]  # a new stay, a new flag


def test_a_dismissed_group_occupation_stays_quiet_whoever_joins() -> None:
    zone = ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5, min_count=2, realert_s=60)
    rules = CameraRules(1, [zone])
    (flag,) = feed(rules, [[box(x=100), box(x=600)]] * 10, 0.0)
    rules.remember("g-1", flag)
    assert rules.dismissed("g-1") is True
    # a third car joins and the first one leaves: the occupation goes on, still dismissed
    assert feed(rules, [[box(x=100), box(x=600), box(x=350)]] * 60, 10.0) == []
    assert feed(rules, [[box(x=600), box(x=350)]] * 100, 70.0) == []  # re-alerts were due at 65, 125
    # the control: undismissed, the same occupation re-alerts
    rules = CameraRules(1, [zone])
    flags = feed(rules, [[box(x=100), box(x=600)]] * 10, 0.0)
    flags += feed(rules, [[box(x=100), box(x=600), box(x=350)]] * 60, 10.0)
    flags += feed(rules, [[box(x=600), box(x=350)]] * 100, 70.0)
    assert [f.ts for f in flags] == [5.0, 65.0, 125.0]


def test_a_flagged_stay_that_goes_on_is_sighted_not_flagged_again() -> None:
    """No re-alert set: one flag, then a sighting every `sighting_s` while the car stays (dispatch
    notes those on the zone's open case); a new arrival after it left is a new flag."""
    env = RuleEnv(RulesConfig(sighting_s=60))
    rules = CameraRules(1, [ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5)], env=env)
    flags, sighted = [], []
    for i in range(200):
        flags += rules.update(float(i), [box()], W, H)
        sighted += rules.sightings
    assert [f.ts for f in flags] == [5.0]
    assert [(s.ts, s.flagged_at, s.first_seen_at, s.detection.label) for s in sighted] == [
        (65.0, 5.0, 0.0, "car"), (125.0, 5.0, 0.0, "car"), (185.0, 5.0, 0.0, "car")
    ]
    # it leaves (past the grace), another car comes: a flag, and its own sightings later
    assert feed(rules, [[]] * 5, 200.0) == [] and rules.sightings == []
    assert [f.ts for f in feed(rules, [[box(x=600)]] * 10, 205.0)] == [210.0]
    # a re-alert resets the sighting clock: sightings fall between re-alerts only
    rules = CameraRules(1, [ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5, realert_s=100)], env=env)
    sighted = []
    for i in range(220):
        rules.update(float(i), [box()], W, H)
        sighted += [s.ts for s in rules.sightings]
    assert sighted == [65.0, 165.0]  # flags at 5, 105, 205
    # None switches sightings off
    rules = CameraRules(1, [ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5)], env=RuleEnv(RulesConfig(sighting_s=None)))
    for i in range(200):
        rules.update(float(i), [box()], W, H)
        assert rules.sightings == []


# -- street stalls ---------------------------------------------------------------------------------


def stall_zone(**kw: object) -> ZoneSpec:
    return ZoneSpec.model_validate({"id": 3, "name": "pavement", "polygon": ROAD, "rule": "street_stall", "dwell_s": 10, **kw})


def test_stall_with_people_dwelling_flags_once() -> None:
    rules = CameraRules(1, [stall_zone()])
    umbrella, table = box("umbrella", x=300, w=150, h=150), box("dining table", x=310, y_bottom=420, w=120, h=60)
    vendor = box("person", x=460, y_bottom=430, w=50, h=160)
    flags = feed(rules, [[umbrella, table, vendor]] * 20, 0.0)
    assert len(flags) == 1  # umbrella and table overlap heavily: one stall
    assert flags[0].zone.rule == "street_stall" and flags[0].detection.label in {"umbrella", "dining table"}


def test_stall_things_without_people_or_moving_do_not_flag() -> None:
    rules = CameraRules(1, [stall_zone()])
    assert feed(rules, [[box("chair", x=300)]] * 30, 0.0) == []  # a chair left alone is not a stall
    rules = CameraRules(1, [stall_zone()])
    walker = box("person", x=520, w=50, h=160)
    # carried along the pavement: every sample it has moved on, its dwell starts again
    moving = [[box("umbrella", x=100 + 40 * i, w=100, h=100), walker] for i in range(20)]
    assert feed(rules, moving, 0.0) == []


def test_custom_model_stall_class_needs_no_people() -> None:
    env = RuleEnv(RulesConfig(classes=ClassMap(stall=["street_stall"], stall_people=[])))
    rules = CameraRules(1, [stall_zone()], env=env)
    assert feed(rules, [[box("umbrella")]] * 20, 0.0) == []  # COCO stand-ins are no longer watched
    assert len(feed(rules, [[box("street_stall")]] * 20, 100.0)) == 1


def test_class_map_renames_vehicles() -> None:
    env = RuleEnv(RulesConfig(classes=ClassMap(vehicle=["parked_vehicle"])))
    rules = CameraRules(1, [ZoneSpec(id=1, name="z", polygon=ROAD, dwell_s=5)], env=env)
    assert feed(rules, [[box("car")]] * 10, 0.0) == []
    assert len(feed(rules, [[box("parked_vehicle")]] * 10, 100.0)) == 1


def test_rule_must_fit_the_zone_kind() -> None:
    assert ZoneSpec(id=1, name="b", kind="bin", polygon=ROAD).rule == "overflowing_bin"
    assert ZoneSpec(id=1, name="r", polygon=ROAD).rule == "occupied_road"
    with pytest.raises(ValidationError, match="cannot carry"):
        ZoneSpec(id=1, name="b", kind="bin", rule="occupied_road", polygon=ROAD)
    with pytest.raises(ValidationError, match="cannot carry"):
        ZoneSpec(id=1, name="r", kind="road", rule="overflowing_bin", polygon=ROAD)


def test_bin_zone_without_reference_or_frame_stays_quiet() -> None:
    zone = ZoneSpec(id=4, name="bin", kind="bin", polygon=ROAD, dwell_s=0)
    rules = CameraRules(1, [zone])
    assert feed(rules, [[box("suitcase")]] * 5, 0.0) == []


def test_bin_zone_uses_the_model_class_when_the_model_has_one() -> None:
    env = RuleEnv()
    env.model_classes = frozenset({"car", "overflowing_bin"})
    rules = CameraRules(1, [ZoneSpec(id=4, name="bin", kind="bin", polygon=ROAD, dwell_s=5)], env=env)
    flags = feed(rules, [[box("overflowing_bin", y_bottom=450)]] * 10, 0.0)
    assert [(f.ts, f.detection.label, f.zone.rule) for f in flags] == [(5.0, "overflowing_bin", "overflowing_bin")]
