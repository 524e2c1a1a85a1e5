"""Time-of-day windows ("07:00-19:00", "22:00-06:00") in the hub's time zone. Pure logic.

A zone with windows is watched only inside one of them: outside, nothing accrues (dwell timers
start afresh when a window opens) and nothing is flagged. A window whose end is before its start
crosses midnight. No windows means always active.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WINDOW_PATTERN = r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$"
_WINDOW = re.compile(WINDOW_PATTERN)
DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Minutes after local midnight: active for start <= t < end, or across midnight when end < start."""

    start: int
    end: int

    def contains(self, minute: float) -> bool:
        """Whether a local time of day (minutes after midnight, fractional) lies in the window."""
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


def parse_window(text: str) -> TimeWindow:
    """Parse "HH:MM-HH:MM" (24:00 allowed as an end); ValueError with the reason otherwise."""
    match = _WINDOW.match(text.strip())
    if match is None:
        raise ValueError(f"time window {text!r} is not HH:MM-HH:MM (e.g. 07:00-19:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end > DAY_MIN:
        raise ValueError(f"time window {text!r} ends after 24:00")
    if start == end:
        raise ValueError(f"time window {text!r} is empty; leave the windows out to watch all day")
    return TimeWindow(start, end)


def parse_windows(texts: Sequence[str]) -> tuple[TimeWindow, ...]:
    """Parse every window; ValueError on the first bad one."""
    return tuple(parse_window(t) for t in texts)


def local_minute(ts: float, tz: ZoneInfo) -> float:
    """Minutes after local midnight of the epoch time `ts` in `tz` (DST-aware)."""
    local = datetime.fromtimestamp(ts, tz)
    return local.hour * 60 + local.minute + local.second / 60.0


def active(windows: Sequence[TimeWindow], ts: float, tz: ZoneInfo) -> bool:
    """Whether `ts` falls in any window; always True without windows."""
    if not windows:
        return True
    minute = local_minute(ts, tz)
    return any(w.contains(minute) for w in windows)
