"""Synthetic city-scale case history for bench/cases.py: numpy-generated, COPY-loaded.

A city of 12 districts (4 field teams each, 2,000 cameras, 6,000 street addresses with a few hot
spots) files cases over 18 months: daytime-heavy, sources and categories weighted as centres
report them, ~95 % of older cases closed (most of those on time), recent ones spread over the
open statuses, some past their deadline. Each dispatched case has its task, each filed case
its stage clock (running, paused or stopped as its status says).

The statistics rollup of these cases is computed here in bulk (vectorised); `check_rollup`
proves on a sample that it equals what the live hook (fusionhub.dispatch.rollup.event_deltas)
writes for the same transitions, so the statistics query reads realistic, correct rows.

Every case also gets its timeline (one entry per transition it went through, 1-7 each, as the
service records them) and the case's head hash, so the transition benchmark appends to a
case_events table of city size. The seeded entries' hashes chain (each names the one before)
but are not the canonical-JSON hashes: hashing 8 million JSON entries would double the seeding
time and nothing here verifies old chains.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from fusionhub.dispatch.rollup import (
    DIM_CATEGORY,
    DIM_SOURCE,
    DIM_STATUS,
    DIM_TEAM,
    METRICS,
    NO_TEAM,
    CaseFacts,
    Deltas,
    event_deltas,
)

DAY_S = 86400.0
HISTORY_DAYS = 548  # 18 months
REGIONS = [f"city.d{i:02d}" for i in range(1, 13)]
REGION_WEIGHTS = np.array([14, 12, 11, 10, 9, 9, 8, 7, 6, 5, 5, 4], float)
TEAMS_PER_REGION = 4
CAMERAS = 2000
STREETS = 6000
SOURCES = ["video_ai", "hotline", "patrol", "manual"]
SOURCE_WEIGHTS = np.array([35, 30, 25, 10], float)
# category code, weight, handling limit in hours (as the default catalog's limits run on a clock)
CATEGORIES: list[tuple[str, float, float]] = [
    ("roadside_parking", 18, 2), ("exposed_garbage", 14, 8), ("street_stall", 11, 4), ("overflowing_bin", 9, 4),
    ("business_outside_shop", 8, 4), ("dirty_road", 7, 8), ("shared_bikes", 6, 4), ("piled_materials", 5, 24),
    ("illegal_advert", 4, 48), ("damaged_road", 3, 120), ("manhole_cover", 3, 4), ("construction_spill", 3, 8),
    ("street_light", 2, 72), ("damaged_bin", 2, 72), ("damaged_greenery", 1.5, 72), ("fallen_tree", 1, 4),
    ("road_collapse", 0.5, 2), ("illegal_construction", 0.5, 360), ("other", 1.5, 72),
]
# statuses a case can end up in, in the order of their codes
STATUSES = ["reported", "filed", "dispatched", "handling", "handled", "closed", "evaluated", "refused", "suspended"]
S = {name: i for i, name in enumerate(STATUSES)}
RECENT_MIX = {"reported": 3, "filed": 6, "dispatched": 8, "handling": 20, "handled": 13, "closed": 40,
              "evaluated": 5, "refused": 3, "suspended": 2}
OLD_MIX = {"closed": 55, "evaluated": 39, "refused": 3, "suspended": 1, "handled": 1, "handling": 1}


@dataclass
class City:
    """The fixed world the cases happen in (ids as they will be in the database)."""

    team_ids: np.ndarray  # [region, k] -> team id
    camera_region: np.ndarray  # camera index -> region index
    camera_first_id: int


def make_city(first_team_id: int = 1, first_camera_id: int = 1) -> City:
    teams = np.arange(len(REGIONS) * TEAMS_PER_REGION).reshape(len(REGIONS), TEAMS_PER_REGION) + first_team_id
    rng = np.random.default_rng(7)
    camera_region = rng.choice(len(REGIONS), size=CAMERAS, p=REGION_WEIGHTS / REGION_WEIGHTS.sum())
    return City(team_ids=teams, camera_region=camera_region, camera_first_id=first_camera_id)


@dataclass
class Batch:
    """One chunk of synthetic cases as columns (times in epoch seconds, NaN = never)."""

    ids: np.ndarray
    region: np.ndarray
    source: np.ndarray
    category: np.ndarray
    team: np.ndarray  # team id, 0 = none
    camera: np.ndarray  # camera id, 0 = none
    street: np.ndarray
    status: np.ndarray
    created: np.ndarray
    dispatched: np.ndarray
    acked: np.ndarray
    handled: np.ndarray
    closed: np.ndarray
    deadline: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _mix(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    names = list(mix)
    p = np.array([mix[k] for k in names], float)
    return np.array([S[k] for k in names])[rng.choice(len(names), size=n, p=p / p.sum())]


def generate(city: City, n: int, first_id: int, now: float, seed: int, *, days: float = HISTORY_DAYS) -> Batch:
    """`n` cases created over the `days` before `now` (sorted by creation, ids from `first_id`)."""
    rng = np.random.default_rng(seed)
    day = np.floor(rng.random(n) * days)
    # busier by day (hub-local 07:00-21:00 mostly): a mixture of a daytime normal and uniform
    hour = np.where(rng.random(n) < 0.85, np.clip(rng.normal(13.5, 3.5, n), 0, 23.99), rng.random(n) * 24)
    created = np.sort(now - (day + 1) * DAY_S + hour * 3600.0 - 8 * 3600.0)
    created = np.minimum(created, now - 60.0)
    region = rng.choice(len(REGIONS), size=n, p=REGION_WEIGHTS / REGION_WEIGHTS.sum())
    source = rng.choice(len(SOURCES), size=n, p=SOURCE_WEIGHTS / SOURCE_WEIGHTS.sum())
    weights = np.array([w for _, w, _ in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=n, p=weights / weights.sum())
    limit_h = np.array([h for _, _, h in CATEGORIES])[category]
    team = city.team_ids[region, rng.integers(0, TEAMS_PER_REGION, n)]
    # video cases come from a camera of their district; the others from streets with hot spots
    cams_by_region = [np.flatnonzero(city.camera_region == r) for r in range(len(REGIONS))]
    camera = np.array([cams_by_region[r][k % len(cams_by_region[r])] for r, k in
                       zip(region, rng.integers(0, 1 << 30, n), strict=True)]) + city.camera_first_id
    camera = np.where(source == 0, camera, 0)
    street = np.minimum(rng.zipf(1.3, n), STREETS) - 1
    age = now - created
    status = np.where(age > 3 * DAY_S, _mix(rng, OLD_MIX, n), _mix(rng, RECENT_MIX, n))
    # video cases are confirmed flags: filed at once, never refused (a dismissed flag makes no case)
    status = np.where((source == 0) & (status == S["reported"]), S["filed"], status)
    status = np.where((source == 0) & (status == S["refused"]), S["closed"], status)
    reached = status >= S["dispatched"]
    reached &= status != S["refused"]
    dispatched = np.where(reached, created + rng.exponential(1200.0, n), np.nan)
    acked_ok = reached & (status != S["dispatched"])
    acked = np.where(acked_ok, dispatched + rng.exponential(600.0, n), np.nan)
    handled_ok = np.isin(status, [S["handled"], S["closed"], S["evaluated"]])
    # 88 % handled inside the limit
    share = np.where(rng.random(n) < 0.88, rng.uniform(0.1, 0.95, n), rng.uniform(1.05, 2.5, n))
    handled = np.where(handled_ok, dispatched + limit_h * 3600.0 * share, np.nan)
    closed_ok = np.isin(status, [S["closed"], S["evaluated"]])
    closed = np.where(closed_ok, handled + rng.exponential(3600.0, n), np.nan)
    # nothing happens in the future: a case whose steps would run past now stops where it is
    for col, back_to in ((closed, "handled"), (handled, "handling"), (acked, "dispatched")):
        future = np.nan_to_num(col, nan=-1.0) > now
        status = np.where(future, S[back_to], status)
        col[future] = np.nan
    handled[np.isnan(acked)] = np.nan
    closed[np.isnan(handled)] = np.nan
    dispatch_limit = 1800.0
    deadline = np.where(np.isnan(dispatched), created + dispatch_limit, dispatched + limit_h * 3600.0)
    deadline = np.where(np.isin(status, [S["reported"], S["refused"]]), np.nan, deadline)
    team = np.where(np.isnan(dispatched), 0, team)
    return Batch(
        ids=np.arange(first_id, first_id + n), region=region, source=source, category=category, team=team,
        camera=camera, street=street, status=status, created=created, dispatched=dispatched, acked=acked,
        handled=handled, closed=closed, deadline=deadline,
    )


def _dt(values: np.ndarray) -> list[Any]:
    """Epoch seconds as naive UTC datetimes (asyncpg reads naive as UTC), NaN as None."""
    out = np.full(len(values), np.datetime64("NaT", "us"))
    ok = ~np.isnan(values)
    out[ok] = (values[ok] * 1e6).astype("int64").astype("datetime64[us]")
    return list(out.astype(object))


CASE_COLUMNS = ["id", "title", "status", "source", "category", "camera_id", "region", "location", "team_id",
                "deadline_at", "created_at", "updated_at", "version", "timeline_head"]
EVENT_COLUMNS = ["case_id", "seq", "at", "actor_id", "action", "from_status", "to_status", "note", "data",
                 "prev_hash", "hash"]
# the action that leads into each status (the timeline's `action`)
_ACTION_TO = {"reported": "intake", "filed": "file", "refused": "refuse", "dispatched": "dispatch",
              "handling": "acknowledge", "handled": "report", "closed": "verify", "evaluated": "evaluate",
              "suspended": "suspend"}
_GENESIS = "0" * 64


def timelines(b: Batch) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The batch's timeline rows (EVENT_COLUMNS) and each case's head hash."""
    rows: list[tuple[Any, ...]] = []
    heads: list[str] = []
    for i in range(len(b)):
        case_id = int(b.ids[i])
        prev = _GENESIS
        for seq, (before, after, when) in enumerate(_events(b, i), start=1):
            digest = hashlib.sha256(f"{prev}{case_id}/{seq}/{after}".encode()).hexdigest()
            at = datetime.fromtimestamp(when, UTC).replace(tzinfo=None)  # naive UTC, as _dt
            rows.append((case_id, seq, at, None, _ACTION_TO[after], before, after, None, "{}", prev, digest))
            prev = digest
        heads.append(prev)
    return rows, heads
TASK_COLUMNS = ["case_id", "team_id", "status", "deadline_at", "created_at", "acknowledged_at", "done_at"]


def case_records(b: Batch, heads: list[str]) -> Iterator[tuple[Any, ...]]:
    cats = [c for c, _, _ in CATEGORIES]
    last = np.fmax(np.fmax(b.created, np.nan_to_num(b.dispatched, nan=0)), np.fmax(
        np.nan_to_num(b.handled, nan=0), np.nan_to_num(b.closed, nan=0)))
    created, updated, deadline = _dt(b.created), _dt(last), _dt(b.deadline)
    for i in range(len(b)):
        cat = cats[b.category[i]]
        cam = int(b.camera[i])
        place = f"Camera {cam} / lane" if cam else f"Street {int(b.street[i])} No. {int(b.street[i]) % 97 + 1}"
        yield (int(b.ids[i]), f"{cat} · {place}", STATUSES[b.status[i]], SOURCES[b.source[i]], cat,
               cam or None, REGIONS[b.region[i]], place, int(b.team[i]) or None, deadline[i], created[i],
               updated[i], 1, heads[i])


CLOCK_COLUMNS = ["case_id", "stage", "limit_type", "limit_amount", "started_at", "warn_at", "due_at", "state",
                 "next_check_at", "paused_at", "remaining", "reminders", "unanswered", "penalties"]
WARN_SHARE = 0.8  # DispatchConfig's default


def clock_records(b: Batch, now: float) -> Iterator[tuple[Any, ...]]:
    """Each filed case's stage clock, as the service keeps one per case from filing on: the
    dispatch stage until dispatched, then the handling stage; running (warned, overdue by now)
    while the case waits, paused when handled or suspended, stopped when closed."""
    limit_h = np.array([h for _, _, h in CATEGORIES])[b.category]
    handle = ~np.isnan(b.dispatched)
    started = np.where(handle, b.dispatched, b.created)
    amount = np.where(handle, limit_h, 0.5)
    due = b.deadline
    warn = started + WARN_SHARE * (due - started)
    paused_at = np.where(b.status == S["handled"], b.handled, np.where(b.status == S["suspended"], started, np.nan))
    remaining = np.where(np.isnan(paused_at), np.nan, np.maximum(0.0, (due - paused_at) / 3600.0))
    started_dt, warn_dt, due_dt, paused_dt = _dt(started), _dt(warn), _dt(due), _dt(paused_at)
    check_dt = _dt(np.where(now < warn, warn, np.where(now < due, due, now + 3600.0)))
    waiting = {S["filed"], S["dispatched"], S["handling"]}
    for i in range(len(b)):
        status = int(b.status[i])
        if np.isnan(due[i]):
            continue  # reported or refused: never filed, no clock
        if status in waiting:
            state = "overdue" if due[i] <= now else "warned" if warn[i] <= now else "running"
            check = check_dt[i]
        else:
            state = "paused" if status in (S["handled"], S["suspended"]) else "stopped"
            check = None
        yield (int(b.ids[i]), "handle" if handle[i] else "dispatch", "urgent_hours", float(amount[i]),
               started_dt[i], warn_dt[i], due_dt[i], state, check, paused_dt[i],
               None if np.isnan(remaining[i]) else float(remaining[i]), 0, 0, 0)


def task_records(b: Batch) -> Iterator[tuple[Any, ...]]:
    has = ~np.isnan(b.dispatched)
    idx = np.flatnonzero(has)
    deadline, created = _dt(b.deadline[idx]), _dt(b.dispatched[idx])
    acked, done = _dt(b.acked[idx]), _dt(b.handled[idx])
    for j, i in enumerate(idx):
        st = "done" if done[j] is not None else "acknowledged" if acked[j] is not None else "pending"
        yield (int(b.ids[i]), int(b.team[i]), st, deadline[j], created[j], acked[j], done[j])


def _counts(days: np.ndarray, regions: np.ndarray, keys: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
    """(day, region, key, count) for each distinct triple (packed into one int64 for speed)."""
    packed = (days.astype(np.int64) * 64 + regions) * 4096 + keys
    uniq, counts = np.unique(packed, return_counts=True)
    for value, count in zip(uniq.tolist(), counts.tolist(), strict=True):
        rest, key = divmod(value, 4096)
        day, region = divmod(rest, 64)
        yield day, region, key, count


def rollup(b: Batch, tz_offset_s: float, into: Deltas | None = None) -> Deltas:
    """The rollup rows of a batch, vectorised (hub zone at a fixed UTC offset, as Asia/Shanghai)."""
    out: Deltas = into if into is not None else defaultdict(lambda: [0] * len(METRICS))
    cats = [c for c, _, _ in CATEGORIES]
    dates: dict[int, Any] = {}

    def day(ts: np.ndarray) -> np.ndarray:
        return np.floor((ts + tz_offset_s) / DAY_S).astype(np.int64)

    def date_of(number: int) -> Any:
        if number not in dates:
            dates[number] = _date(number)
        return dates[number]

    filed = b.status != S["reported"]
    filed &= b.status != S["refused"]
    has_d, has_h, has_c = ~np.isnan(b.dispatched), ~np.isnan(b.handled), ~np.isnan(b.closed)
    late = has_h & (np.nan_to_num(b.handled, nan=0) > np.nan_to_num(b.deadline, nan=np.inf))
    on_time = has_c & ~late
    flows = [
        (0, filed, b.created, False), (1, has_d, b.dispatched, True), (2, has_h, b.handled, True),
        (3, late, b.handled, True), (4, has_c, b.closed, True), (5, on_time, b.closed, True),
    ]
    for metric, mask, when, with_team in flows:
        days = day(np.nan_to_num(when[mask], nan=0))
        regions = b.region[mask]
        dims: list[tuple[str, np.ndarray, Any]] = [
            (DIM_SOURCE, b.source[mask], lambda k: SOURCES[k]),
            (DIM_CATEGORY, b.category[mask], lambda k: cats[k]),
            (DIM_TEAM, b.team[mask] if with_team else np.zeros(int(mask.sum()), np.int64),
             lambda k: str(k) if k else NO_TEAM),
        ]
        for dim, keys, name in dims:
            for d, r, k, c in _counts(days, regions, keys):
                out[(dim, date_of(d), REGIONS[r], name(k))][metric] += c
    for d, r, st, c in _counts(day(b.created), b.region, b.status):
        out[(DIM_STATUS, date_of(d), REGIONS[r], STATUSES[st])][6] += c
    return out


def _date(day_number: int) -> Any:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day_number)).date()


def _events(b: Batch, i: int) -> list[tuple[str | None, str, float]]:
    """The transitions the synthetic case i went through, as the service records them."""
    st = STATUSES[b.status[i]]
    t0 = float(b.created[i])
    ev: list[tuple[str | None, str, float]] = []
    if b.source[i] == 0:
        ev.append((None, "filed", t0))
    else:
        ev.append((None, "reported", t0))
        if st == "refused":
            return [*ev, ("reported", "refused", t0 + 60)]
        if st == "reported":
            return ev
        ev.append(("reported", "filed", t0))
    chain = [("dispatched", b.dispatched[i]), ("handling", b.acked[i]), ("handled", b.handled[i]),
             ("closed", b.closed[i])]
    prev = "filed"
    for name, when in chain:
        if np.isnan(when):
            break
        ev.append((prev, name, float(when)))
        prev = name
    if st == "evaluated":
        ev.append(("closed", "evaluated", float(b.closed[i]) + 3600))
    elif st == "suspended":
        ev.append((prev, "suspended", ev[-1][2] + 60))
    return ev


def check_rollup(b: Batch, tz: ZoneInfo, sample: int = 400) -> int:
    """Compare the vectorised rollup with the live hook's `event_deltas` on `sample` cases."""
    cats = [c for c, _, _ in CATEGORIES]
    picked = np.linspace(0, len(b) - 1, min(sample, len(b))).astype(int)
    sub = Batch(**{k: getattr(b, k)[picked] for k in Batch.__dataclass_fields__})
    offset = datetime(2025, 1, 1, tzinfo=tz).utcoffset()
    assert offset is not None
    fast = {k: v for k, v in rollup(sub, offset.total_seconds()).items() if any(v)}
    slow: Deltas = defaultdict(lambda: [0] * len(METRICS))
    for i in range(len(sub)):
        def at(ts: float) -> datetime:
            return datetime.fromtimestamp(ts, UTC)
        team = int(sub.team[i]) or None
        prior: list[tuple[str, datetime]] = []
        for before, after, when in _events(sub, i):
            facts = CaseFacts(
                region=REGIONS[sub.region[i]], source=SOURCES[sub.source[i]], category=cats[sub.category[i]],
                team_id=team if after not in ("reported", "filed", "refused") else None,
                created_at=at(float(sub.created[i])),
                deadline_at=None if np.isnan(sub.deadline[i]) else at(float(sub.deadline[i])),
            )
            event_deltas(facts, at=at(when), from_status=before, to_status=after, prior=prior, tz=tz, into=slow)
            prior.append((after, at(when)))
    slow_rows = {k: v for k, v in slow.items() if any(v)}
    if fast != slow_rows:
        diff = [
            (k, fast.get(k), slow_rows.get(k)) for k in sorted(set(fast) | set(slow_rows), key=str)
            if fast.get(k) != slow_rows.get(k)
        ][:6]
        raise AssertionError(f"the bulk rollup differs from the live hook's: {diff}")
    return len(sub)
