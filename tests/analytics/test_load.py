"""LoadWindow: whether analytics keeps up, from a window of per-second counts (fake clock)."""

from __future__ import annotations

import logging

import pytest

from fusionhub.analytics.load import BEHIND_AGE_S, CHECK_S, MIN_SPAN_S, LoadWatch, LoadWindow, describe


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def play(window: LoadWindow, clock: Clock, seconds: int, cameras: range, *, lose: dict[int, int] | None = None,
         age_s: float = 0.4) -> None:
    """Every camera sampled once a second; camera c loses one sample in lose[c] (superseded), the rest are analysed."""
    lose = lose or {}
    for s in range(seconds):
        for c in cameras:
            window.sampled(c)
            if c in lose and s % lose[c] == 0:
                window.superseded(c)
            else:
                window.analysed(c, age_s)
        clock.now += 1.0


def test_a_hub_that_analyses_every_sample_in_time_keeps_up() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    play(window, clock, 30, range(1, 11))
    report = window.report(set(range(1, 11)), ready_workers=2)
    assert report["state"] == "keeping_up" and report["reasons"] == []
    assert (report["sampled"], report["analysed"], report["superseded"]) == (300, 300, 0)
    assert report["sample_age_p99_s"] == pytest.approx(0.4) and report["window_s"] == 30.0
    assert report["cameras_sampled"] == 10 and report["slowest"] == []


def test_superseded_samples_make_it_behind_and_name_the_cameras_that_lost_most() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    # cameras 1-6 lose nothing, 7 and 8 one sample in two, 9 and 10 one in three: 50 of 300 lost
    play(window, clock, 30, range(1, 11), lose={7: 2, 8: 2, 9: 3, 10: 3})
    report = window.report(set(range(1, 11)), ready_workers=2)
    assert report["state"] == "behind" and report["reasons"] == ["superseded"]
    assert report["superseded"] == 50 and report["superseded_share"] == pytest.approx(50 / 300, abs=1e-3)
    slowest = report["slowest"]
    assert [c["camera_id"] for c in slowest] == [7, 8, 9, 10, 1]  # worst first, then the least analysed
    assert slowest[0] == {"camera_id": 7, "sampled_per_s": 1.0, "analysed_per_s": 0.5, "superseded": 15, "failed": 0}
    assert describe(report) == "17% of samples superseded before they were analysed"


def test_a_few_superseded_samples_are_jitter_not_trouble() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    play(window, clock, 30, range(1, 11), lose={3: 10})  # 3 of 300
    assert window.report(set(range(1, 11)), ready_workers=1)["state"] == "keeping_up"


def test_samples_analysed_too_late_make_it_behind() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    play(window, clock, 20, range(1, 4), age_s=BEHIND_AGE_S + 1.5)
    report = window.report({1, 2, 3}, ready_workers=1)
    assert report["state"] == "behind" and report["reasons"] == ["late"]
    assert report["superseded"] == 0 and report["sample_age_p99_s"] == pytest.approx(3.5)
    assert describe(report) == "sample age p99 3.5 s"


def test_samples_that_fail_in_a_worker_make_it_behind() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    for _ in range(20):  # camera 2's worker errors on every other sample (a broken model, a bad frame)
        for c in (1, 2):
            window.sampled(c)
            if c == 2 and int(clock.now) % 2:
                window.failed(c)
            else:
                window.analysed(c, 0.3)
        clock.now += 1.0
    report = window.report({1, 2}, ready_workers=1)
    assert report["state"] == "behind" and report["reasons"] == ["failed"] and report["superseded"] == 0
    assert report["failed"] == 10 and [c["camera_id"] for c in report["slowest"]] == [2, 1]
    assert report["slowest"][0]["failed"] == 10
    assert describe(report) == "10 of 40 samples failed in a worker (its log says why)"


def test_no_verdict_while_warming_up_without_workers_or_without_samples() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    play(window, clock, int(MIN_SPAN_S) - 2, range(1, 3), lose={1: 1, 2: 1})  # the first seconds: all lost
    assert window.report({1, 2}, ready_workers=1)["state"] == "warming_up"
    assert window.report({1, 2}, ready_workers=0)["state"] == "no_workers"
    assert window.report(set(), ready_workers=0)["state"] == "warming_up"  # no camera: nothing to be short of
    clock.now += 30
    assert window.report({1, 2}, ready_workers=1)["state"] == "behind"  # still in the window
    clock.now += 60
    report = window.report({1, 2}, ready_workers=1)
    assert report["state"] == "idle" and report["sampled"] == 0


def test_trouble_ages_out_of_the_window_and_restart_forgets_it() -> None:
    clock = Clock()
    window = LoadWindow(20.0, clock=clock)
    play(window, clock, 20, range(1, 5), lose={1: 1, 2: 1})
    assert window.report(set(range(1, 5)), ready_workers=1)["state"] == "behind"
    play(window, clock, 21, range(1, 5))  # a window's worth of good seconds
    report = window.report(set(range(1, 5)), ready_workers=1)
    assert report["state"] == "keeping_up" and report["superseded"] == 0 and report["sampled"] >= 4 * 18
    assert len(window._seconds) <= 21  # bounded: one entry per second of the window
    play(window, clock, 5, range(1, 5), lose={1: 1, 2: 1, 3: 1, 4: 1})
    window.restart()  # the first worker just got ready: what came before says nothing of capacity
    report = window.report(set(range(1, 5)), ready_workers=1)
    assert report["state"] == "warming_up" and report["sampled"] == 0 and report["window_s"] == 0.0


def test_cameras_removed_since_are_not_named() -> None:
    clock = Clock()
    window = LoadWindow(60.0, clock=clock)
    play(window, clock, 15, range(1, 4), lose={1: 1, 2: 1})
    report = window.report({2, 3}, ready_workers=1)  # camera 1 lost its zones meanwhile
    assert report["state"] == "behind" and [c["camera_id"] for c in report["slowest"]] == [2, 3]


def test_a_window_shorter_than_a_verdict_needs_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        LoadWindow(MIN_SPAN_S - 1)


def test_the_log_warns_once_after_trouble_lasts_and_says_when_it_is_over(caplog: pytest.LogCaptureFixture) -> None:
    states = iter(["behind", "keeping_up", "behind", "behind", "behind", "behind", "behind", "warming_up", "keeping_up"])
    current: dict[str, object] = {}

    def report() -> dict[str, object]:
        current.update(
            state=next(states), reasons=["superseded"], window_s=60.0, sampled=100, analysed=70,
            superseded_share=0.3, failed=0, sample_age_p99_s=0.8,
            slowest=[{"camera_id": 4, "sampled_per_s": 1.0, "analysed_per_s": 0.4, "superseded": 36}],
        )
        return current

    caplog.set_level(logging.INFO, logger="fusionhub.analytics.load")
    watch = LoadWatch(report)
    now = 100.0
    messages = []
    for _ in range(9):
        now += CHECK_S
        watch.tick(now)
        watch.tick(now + 1)  # between checks: nothing is looked at
        messages.append([r.getMessage() for r in caplog.records])
        caplog.clear()
    # a blip (one check) says nothing; trouble for WARN_AFTER_S warns once; warming up changes nothing
    assert [len(m) for m in messages] == [0, 0, 0, 0, 1, 0, 0, 0, 1], messages
    assert "behind over the last 60 s: 30% of samples superseded" in messages[4][0]
    assert "camera 4 0.40 of 1.00/s" in messages[4][0] and "Add workers" in messages[4][0]
    assert messages[8][0].startswith("analytics keeps up again over the last 60 s: 100 samples, 30% superseded")


def test_the_watch_hands_on_each_changed_verdict_once() -> None:
    """What the hub pushes to the consoles: a verdict that changed (state, reasons or which cameras
    lose most), once; between checks nothing, unless a worker came or went (`force`)."""
    verdicts = iter([
        ("warming_up", [], []),
        ("keeping_up", [], []),
        ("keeping_up", [], []),  # unchanged: nothing to tell
        ("behind", ["superseded"], [4]),
        ("behind", ["superseded"], [4, 7]),  # another camera suffers
        ("behind", ["superseded", "late"], [4, 7]),  # and samples come late too
        ("behind", ["superseded", "late"], [4, 7]),
        ("no_workers", [], []),  # the last worker died: checked at once
    ])

    def report() -> dict[str, object]:
        state, reasons, slowest = next(verdicts)
        return {"state": state, "reasons": reasons, "slowest": [{"camera_id": c, "sampled_per_s": 1.0, "analysed_per_s": 0.4} for c in slowest],
                "window_s": 60.0, "sampled": 10, "superseded_share": 0.0, "sample_age_p99_s": 0.5, "failed": 0}

    watch = LoadWatch(report)
    now = 100.0
    told = []
    for _ in range(7):
        now += CHECK_S
        told.append(watch.tick(now))
        assert watch.tick(now + 1) is None  # between checks nothing is looked at
    told.append(watch.tick(now + 2, force=True))
    assert [None if r is None else (r["state"], r["reasons"]) for r in told] == [
        ("warming_up", []), ("keeping_up", []), None, ("behind", ["superseded"]), ("behind", ["superseded"]),
        ("behind", ["superseded", "late"]), None, ("no_workers", []),
    ]
    with pytest.raises(StopIteration):  # every verdict was looked at, none twice
        watch.tick(now + 3, force=True)
