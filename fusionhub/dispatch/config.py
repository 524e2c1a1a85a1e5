"""Configuration of the case workflow: working hours, the category catalog file, supervision."""

from __future__ import annotations

import re
from datetime import time

from pydantic import BaseModel, ConfigDict, Field, field_validator

_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_period(text: str) -> tuple[time, time]:
    """`"08:30-12:00"` as two times; ValueError when malformed ("24:00" means the end of the day)."""
    match = _PERIOD.match(text.strip())
    if match is None:
        raise ValueError(f"working period {text!r} must look like 08:30-12:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h2 == 24 and m2 != 0:
        raise ValueError(f"working period {text!r}: 24:00 is the latest end")
    end = time.max if h2 == 24 else time(h2, m2)
    start = time(h1, m1)
    if not start < end:
        raise ValueError(f"working period {text!r} must end after it starts")
    return start, end


class DispatchConfig(BaseModel):
    """How the centre counts time limits and supervises cases that run late."""

    model_config = ConfigDict(extra="forbid")

    working_hours: list[str] = Field(
        default_factory=lambda: ["08:30-12:00", "13:30-17:30"],
        title="Working hours",
        description="the centre's working periods of a working day, local time, in order "
        "(working-hour and working-day limits count only these)",
        min_length=1,
        max_length=6,
    )
    catalog_file: str = Field(
        "categories.json",
        title="Category catalog file",
        description="the category catalog, relative to the data directory; while it does not exist the "
        "built-in catalog is used; PUT /api/v1/categories writes it, an edit on disk is picked up",
        min_length=1,
        max_length=256,
    )
    warn_share: float = Field(
        0.8,
        title="Warning point",
        description="share of a stage's time limit after which a warning is pushed (0.8 = at 80 %)",
        gt=0.0,
        lt=1.0,
    )
    reminder_interval_s: float = Field(
        3600.0,
        title="Reminder interval",
        description="seconds between supervision reminders of an overdue case",
        ge=1.0,
        le=7 * 86400.0,
    )
    reminders_before_penalty: int = Field(
        3,
        title="Unanswered reminders before penalty",
        description="after this many reminders without an answer from the team the case is marked for penalty",
        ge=1,
        le=20,
    )
    supervisor_poll_s: float = Field(
        5.0,
        title="Supervisor poll interval",
        description="seconds between the supervisor's looks for due deadlines (also how late a warning may be)",
        ge=0.05,
        le=300.0,
    )
    claim_lease_s: float = Field(
        60.0,
        title="Claim lease",
        description="seconds a hub process holds claimed supervision work before another process may take it "
        "over (recovers work of a process that died)",
        ge=1.0,
        le=3600.0,
    )
    claim_batch: int = Field(
        100, title="Claim batch", description="most due clocks one supervisor claims at a time", ge=1, le=10_000
    )

    @field_validator("working_hours")
    @classmethod
    def _periods_in_order(cls, value: list[str]) -> list[str]:
        periods = [parse_period(p) for p in value]
        for (_, end), (start, _) in zip(periods, periods[1:], strict=False):
            if start < end:
                raise ValueError("working periods must be in order and must not overlap")
        return value

    def periods(self) -> tuple[tuple[time, time], ...]:
        """The working periods as times."""
        return tuple(parse_period(p) for p in self.working_hours)
