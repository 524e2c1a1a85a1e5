"""A case's stage clock: arming it when a stage starts, pausing and resuming it, extending it, and
what the supervisor does when its next check comes. Pure logic on a `CaseClock` row, no I/O.

States: `running` → (share of the limit used) `warned` → (deadline) `overdue` (督办: a reminder to
the team and its commander every interval) → (that many reminders unanswered) `penalized` (no more
reminders; the case is marked for penalty); `stopped` when the stage ends. A suspended case's clock
keeps its state and stands still (`paused_at` set, nothing checked) until the case resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fusionhub.dispatch import workflow
from fusionhub.dispatch.models import CaseClock, to_epoch
from fusionhub.dispatch.worktime import Limit, LimitType, WorkCalendar, deadline, elapsed

STAGE_DISPATCH, STAGE_HANDLE = "dispatch", "handle"
RUNNING, WARNED, OVERDUE, PENALIZED, STOPPED = "running", "warned", "overdue", "penalized", "stopped"
ACTIVE = (RUNNING, WARNED, OVERDUE, PENALIZED)


@dataclass(frozen=True)
class Supervision:
    """The supervision settings (from DispatchConfig)."""

    warn_share: float = 0.8
    interval: timedelta = timedelta(hours=1)
    max_unanswered: int = 3


@dataclass(frozen=True)
class Notice:
    """Something the supervisor records on the timeline and pushes: a warning, a reminder, a penalty."""

    action: str  # workflow.WARN | SUPERVISE | REMIND | PENALIZE
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The alert kind pushed to consoles and field pages."""
        return {
            workflow.WARN: "warning",
            workflow.SUPERVISE: "overdue",
            workflow.REMIND: "reminder",
            workflow.PENALIZE: "penalty",
        }[self.action]


def limit_of(clock: CaseClock) -> Limit:
    """The stage's time limit."""
    return Limit(as_limit_type(clock.limit_type), clock.limit_amount)


def as_limit_type(value: str) -> LimitType:
    """A stored limit type, checked."""
    for kind in ("urgent_hours", "working_hours", "working_days", "calendar_days"):
        if value == kind:
            return kind
    raise ValueError(f"unknown limit type {value!r}")


def arm(
    clock: CaseClock | None, stage: str, limit: Limit, start: datetime, cal: WorkCalendar, sup: Supervision
) -> CaseClock:
    """Start a stage's clock at `start` (a new row, or the case's row reset)."""
    if clock is None:
        clock = CaseClock(reminders=0, unanswered=0, penalties=0)
    clock.stage = stage
    clock.limit_type = limit.type
    clock.limit_amount = limit.amount
    clock.started_at = start
    clock.due_at = deadline(start, limit, cal)
    clock.warn_at = deadline(start, limit.scaled(sup.warn_share), cal)
    clock.state = RUNNING
    clock.paused_at = None
    clock.remaining = None
    clock.reminders = 0
    clock.unanswered = 0
    clock.last_reminder_at = None
    clock.claimed_by = None
    clock.claimed_until = None
    clock.next_check_at = next_check(clock, sup)
    return clock


def next_check(clock: CaseClock, sup: Supervision) -> datetime | None:
    """When the supervisor must look at this clock next (None: nothing to do until someone acts)."""
    if clock.paused_at is not None:
        return None
    if clock.state == RUNNING:
        return clock.warn_at
    if clock.state == WARNED:
        return clock.due_at
    if clock.state == OVERDUE:
        return (clock.last_reminder_at or clock.due_at) + sup.interval
    return None


def stop(clock: CaseClock | None) -> None:
    """The stage ended (the team reported, the case was refused or closed): no more checks."""
    if clock is not None:
        clock.state = STOPPED
        clock.next_check_at = None
        clock.claimed_by = None
        clock.claimed_until = None


def answered(clock: CaseClock | None) -> None:
    """The team acted on the case: its unanswered reminders are answered."""
    if clock is not None:
        clock.unanswered = 0


def _left(clock: CaseClock, at: datetime, cal: WorkCalendar) -> float:
    """What is left of the limit at `at`, in its units (negative when overrun)."""
    kind = as_limit_type(clock.limit_type)
    return elapsed(at, clock.due_at, kind, cal) - elapsed(clock.due_at, at, kind, cal)


def pause(clock: CaseClock | None, now: datetime, cal: WorkCalendar) -> None:
    """Suspension: the clock stands still, keeping its state and what was left of the limit."""
    if clock is None or clock.state not in ACTIVE or clock.paused_at is not None:
        return
    clock.remaining = _left(clock, now, cal)
    clock.paused_at = now
    clock.next_check_at = None


def resume(clock: CaseClock | None, now: datetime, cal: WorkCalendar, sup: Supervision) -> None:
    """The case resumes: the deadline, the warning point and the reminder schedule move on by the
    time the clock stood still."""
    if clock is None or clock.paused_at is None:
        return
    kind = as_limit_type(clock.limit_type)
    left = clock.remaining if clock.remaining is not None else 0.0
    clock.due_at = deadline(now, Limit(kind, left), cal) if left > 0 else now
    warn_left = left - (1.0 - sup.warn_share) * clock.limit_amount
    clock.warn_at = deadline(now, Limit(kind, warn_left), cal) if warn_left > 0 else now
    if clock.last_reminder_at is not None:
        clock.last_reminder_at += now - clock.paused_at
    clock.paused_at = None
    clock.remaining = None
    clock.next_check_at = next_check(clock, sup)


def extend(clock: CaseClock, extra: Limit, now: datetime, cal: WorkCalendar, sup: Supervision) -> datetime:
    """An approved extension: the deadline moves on by `extra` from the old deadline (or from now, if
    that has passed); warnings and reminders start afresh for the new deadline."""
    base = max(clock.due_at, now)
    clock.due_at = deadline(base, extra, cal)
    clock.warn_at = deadline(base, extra.scaled(sup.warn_share), cal)
    if clock.state in ACTIVE:
        clock.state = RUNNING if clock.warn_at > now else WARNED
        clock.unanswered = 0
        clock.next_check_at = next_check(clock, sup)
    return clock.due_at


def check(clock: CaseClock, now: datetime, sup: Supervision) -> list[Notice]:
    """What the supervisor does when this clock's check is due: the notices to record and push.
    Moves the clock on (state, counters, next check). Late checks (a hub that was down) send one
    notice for the current state, never a backlog of missed ones."""
    notices: list[Notice] = []
    base = {"stage": clock.stage, "due_at": to_epoch(clock.due_at)}
    if clock.paused_at is not None:
        pass  # suspended: nothing runs
    elif clock.state in (RUNNING, WARNED) and now >= clock.due_at:
        clock.state = OVERDUE
        notices.append(_remind(clock, now, workflow.SUPERVISE, base))
    elif clock.state == RUNNING and now >= clock.warn_at:
        clock.state = WARNED
        notices.append(Notice(workflow.WARN, {**base, "share": sup.warn_share}))
    elif clock.state == OVERDUE:
        if clock.unanswered >= sup.max_unanswered:
            clock.state = PENALIZED
            clock.penalties += 1
            clock.penalized_at = now
            notices.append(Notice(workflow.PENALIZE, {**base, "unanswered": clock.unanswered}))
        else:
            notices.append(_remind(clock, now, workflow.REMIND, base))
    clock.next_check_at = next_check(clock, sup)
    return notices


def _remind(clock: CaseClock, now: datetime, action: str, base: dict[str, Any]) -> Notice:
    clock.reminders += 1
    clock.unanswered += 1
    clock.last_reminder_at = now
    return Notice(action, {**base, "reminder": clock.reminders, "unanswered": clock.unanswered})


def clock_dict(clock: CaseClock | None) -> dict[str, Any] | None:
    """`Clock` of the API."""
    if clock is None:
        return None
    return {
        "stage": clock.stage,
        "limit": {"type": clock.limit_type, "amount": clock.limit_amount},
        "started_at": to_epoch(clock.started_at),
        "warn_at": to_epoch(clock.warn_at),
        "due_at": to_epoch(clock.due_at),
        "state": clock.state,
        "paused": clock.paused_at is not None,
        "remaining": clock.remaining,
        "reminders": clock.reminders,
        "unanswered": clock.unanswered,
        "last_reminder_at": to_epoch(clock.last_reminder_at),
        "penalties": clock.penalties,
        "penalized_at": to_epoch(clock.penalized_at),
    }
