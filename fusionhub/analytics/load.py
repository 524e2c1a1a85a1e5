"""Is analytics keeping up? The last minute of samples, per camera, against what was analysed.

A hub past its capacity does not fail. Each camera's newest frame replaces the one still waiting
for a worker (latest wins), so cameras are analysed less often and their flags come later. That
is the right way to degrade, but nobody would notice it: the box looks busy, flags still come.
LoadWindow keeps per-second counts of the last `window_s` seconds (samples taken, samples
superseded before they were analysed, while waiting for a worker or, on a box short of CPU, for
a decode thread; samples analysed and how old they were by then) and says
in plain words whether the hub keeps up, and which cameras suffer most when it does not.

The verdict matches what bench/analytics_capacity.py calls "sustained": every sample analysed
(a few per cent superseded is jitter) and none of them late.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

# Behind: at least this share of the window's samples was superseded before it was analysed
# (or lost with a dead worker). A hub that keeps up supersedes none; a few per cent is jitter.
BEHIND_SHARE = 0.10
# Behind: the 99th percentile of sample age (taken -> rules done) beyond this. Flags and their
# evidence are this late; the capacity bench's own limit is 2 s.
BEHIND_AGE_S = 2.0
# No verdict before the window holds this much: a hub that just started, or whose first worker
# just got ready, has superseded every sample of the seconds it spent loading the model.
MIN_SPAN_S = 10.0
SLOWEST = 5  # cameras named when the hub is behind
CHECK_S = 10.0  # how often the hub asks itself whether it keeps up
WARN_AFTER_S = 20.0  # behind (or without a worker) this long before the log says so: no warning for a blip

log = logging.getLogger(__name__)

State = Literal["no_workers", "warming_up", "idle", "keeping_up", "behind"]


@dataclass(slots=True)
class _Second:
    at: int
    sampled: Counter[int] = field(default_factory=Counter)
    superseded: Counter[int] = field(default_factory=Counter)
    analysed: Counter[int] = field(default_factory=Counter)
    failed: Counter[int] = field(default_factory=Counter)
    ages: list[float] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LoadWindow:
    """Per-second counts of the last `window_s` seconds; `report()` says whether analytics keeps up.

    Bounded: at most window_s + 1 seconds are kept, each with one count per camera that had a
    sample in it. Called on the event loop only.
    """

    def __init__(self, window_s: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if window_s < MIN_SPAN_S:
            raise ValueError(f"window_s must be at least {MIN_SPAN_S} s")
        self.window_s = window_s
        self._clock = clock
        self._seconds: deque[_Second] = deque()
        self._since = clock()

    def restart(self) -> None:
        """Forget everything: counting starts again now (the first worker just got ready)."""
        self._seconds.clear()
        self._since = self._clock()

    def _now(self) -> _Second:
        now = int(self._clock())
        seconds = self._seconds
        if not seconds or seconds[-1].at != now:
            seconds.append(_Second(now))
            while seconds[0].at <= now - self.window_s:
                seconds.popleft()
        return seconds[-1]

    def sampled(self, camera_id: int) -> None:
        """A sample of a camera with zones reached the hub."""
        self._now().sampled[camera_id] += 1

    def superseded(self, camera_id: int) -> None:
        """A sample was never analysed: a newer one replaced it (or its worker died and a newer one was waiting)."""
        self._now().superseded[camera_id] += 1

    def failed(self, camera_id: int) -> None:
        """A worker reported an error for a sample (the hub's log says which)."""
        self._now().failed[camera_id] += 1

    def analysed(self, camera_id: int, age_s: float) -> None:
        """A sample went through the rules, `age_s` after it was taken."""
        second = self._now()
        second.analysed[camera_id] += 1
        second.ages.append(age_s)

    def report(self, cameras: Collection[int], *, ready_workers: int) -> dict[str, Any]:
        """The window's figures and the verdict, for the status page, the log and the bench.

        `reasons` (when behind): "superseded" (superseded_share >= BEHIND_SHARE), "late"
        (sample_age_p99_s > BEHIND_AGE_S), "failed" (as many samples failed in a worker).
        `slowest` names the worst cameras when behind.
        """
        now = self._clock()
        cutoff = now - self.window_s
        sampled: Counter[int] = Counter()
        superseded: Counter[int] = Counter()
        analysed: Counter[int] = Counter()
        failed: Counter[int] = Counter()
        ages: list[float] = []
        for second in self._seconds:
            if second.at > cutoff:
                sampled.update(second.sampled)
                superseded.update(second.superseded)
                analysed.update(second.analysed)
                failed.update(second.failed)
                ages.extend(second.ages)
        span = max(0.0, min(self.window_s, now - self._since))
        n_sampled, n_superseded = sum(sampled.values()), sum(superseded.values())
        n_failed = sum(failed.values())
        share = n_superseded / n_sampled if n_sampled else 0.0
        failed_share = n_failed / n_sampled if n_sampled else 0.0
        p99 = _percentile(ages, 0.99)
        state: State
        reasons: list[str] = []
        if cameras and ready_workers == 0:
            state = "no_workers"
        elif span < MIN_SPAN_S:
            state = "warming_up"
        elif not n_sampled:
            state = "idle"
        else:
            if share >= BEHIND_SHARE:
                reasons.append("superseded")
            if p99 is not None and p99 > BEHIND_AGE_S:
                reasons.append("late")
            if failed_share >= BEHIND_SHARE:
                reasons.append("failed")
            state = "behind" if reasons else "keeping_up"
        per_s = span or 1.0
        watched = [c for c in sampled if c in cameras]
        # the cameras that lost the largest share of their samples, then the least analysed
        worst = sorted(watched, key=lambda c: (-(superseded[c] + failed[c]) / sampled[c], analysed[c] / per_s, c))
        return {
            "state": state,
            "reasons": reasons,
            "limits": {"superseded_share": BEHIND_SHARE, "sample_age_p99_s": BEHIND_AGE_S},
            "window_s": round(span, 1),
            "sampled": n_sampled,
            "analysed": sum(analysed.values()),
            "superseded": n_superseded,
            "superseded_share": round(share, 3),
            "failed": n_failed,
            "sample_age_p50_s": None if not ages else round(_percentile(ages, 0.5) or 0.0, 3),
            "sample_age_p99_s": None if p99 is None else round(p99, 3),
            "cameras_sampled": len(watched),
            "slowest": [
                {
                    "camera_id": c,
                    "sampled_per_s": round(sampled[c] / per_s, 2),
                    "analysed_per_s": round(analysed[c] / per_s, 2),
                    "superseded": superseded[c],
                    "failed": failed[c],
                }
                for c in (worst[:SLOWEST] if state == "behind" else [])
            ],
        }


def describe(report: dict[str, Any]) -> str:
    """Why a report says "behind", in words (for the log and the bench)."""
    words = {
        "superseded": f"{report['superseded_share']:.0%} of samples superseded before they were analysed",
        "late": f"sample age p99 {report['sample_age_p99_s']} s",
        "failed": f"{report['failed']} of {report['sampled']} samples failed in a worker (its log says why)",
    }
    return "; ".join(words[r] for r in report["reasons"])


class LoadWatch:
    """Says in the log when analytics has been behind (or without a ready worker) for a while, and
    when it caught up again: once each way, however long it lasts. Tells its caller each time the
    verdict changes (the hub pushes it to the consoles)."""

    def __init__(self, report: Callable[[], dict[str, Any]]) -> None:
        self._report = report
        self._checked = 0.0
        self._trouble_since: float | None = None  # the first check that found trouble
        self._warned = False
        self._told: tuple[object, ...] | None = None  # the verdict last returned by tick

    def tick(self, now: float, *, force: bool = False) -> dict[str, Any] | None:
        """Called often (the hub's supervision); looks every CHECK_S, or now with `force` (a worker
        came or went). Returns the report when its verdict differs from the last one returned (its
        state, reasons, or which cameras lose most), so that consoles can be told; else None."""
        if not force and now - self._checked < CHECK_S:
            return None
        self._checked = now
        report = self._report()
        self._log(report, now)
        verdict = (report["state"], tuple(report["reasons"]), tuple(c["camera_id"] for c in report["slowest"]))
        if verdict == self._told:
            return None
        self._told = verdict
        return report

    def _log(self, report: dict[str, Any], now: float) -> None:
        state = report["state"]
        if state in ("behind", "no_workers"):
            if self._trouble_since is None:
                self._trouble_since = now
            if self._warned or now - self._trouble_since < WARN_AFTER_S:
                return
            self._warned = True
            if state == "no_workers":
                log.warning("analytics: no worker ready for %.0f s; nothing is being analysed", now - self._trouble_since)
                return
            slowest = ", ".join(
                f"camera {c['camera_id']} {c['analysed_per_s']:.2f} of {c['sampled_per_s']:.2f}/s" for c in report["slowest"]
            )
            log.warning(
                "analytics is behind over the last %.0f s: %s; flags come late and some samples go unanalysed "
                "(slowest: %s). Add workers (analytics.local_workers, or `fusionhub worker` on another machine) "
                "or sample less often",
                report["window_s"], describe(report), slowest,
            )
        elif state in ("keeping_up", "idle"):
            self._trouble_since = None
            if self._warned:
                self._warned = False
                log.info(
                    "analytics keeps up again over the last %.0f s: %d samples, %.0f%% superseded, sample age p99 %s s",
                    report["window_s"], report["sampled"], 100 * report["superseded_share"], report["sample_age_p99_s"],
                )
