"""The case workflow as a table: (status, action) -> next status. Pure logic, no I/O.

GB/T 30428: report → file (立案) → dispatch (派遣) → handle (处置) → feedback → verify (核查)
→ close (结案) → evaluate (回访), with the branches centres run: refuse to file (不予立案), the team
returns a case that is not its remit (退回) and the centre re-dispatches, extension requests
(延期), suspension of what cannot be solved now (缓办/挂账) and its resumption.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fusionhub.dispatch.errors import TransitionRefused

# Statuses in workflow order.
REPORTED = "reported"  # entered by hand, hotline or patrol; waits to be filed or refused
FILED = "filed"
DISPATCHED = "dispatched"
HANDLING = "handling"
HANDLED = "handled"
CLOSED = "closed"
EVALUATED = "evaluated"  # closed, and the return visit is done
REFUSED = "refused"  # not filed (not a case for the centre); final
RETURNED = "returned"  # the team sent it back as not its remit; the centre re-dispatches
SUSPENDED = "suspended"  # cannot be solved now; its clock stands still until it resumes
STATUSES: tuple[str, ...] = (
    REPORTED, FILED, DISPATCHED, HANDLING, HANDLED, CLOSED, EVALUATED, REFUSED, RETURNED, SUSPENDED,
)
# Statuses of a case that is finished (statistics count closed = CLOSED or EVALUATED).
FINISHED: tuple[str, ...] = (CLOSED, EVALUATED, REFUSED)
CLOSED_STATUSES: tuple[str, ...] = (CLOSED, EVALUATED)

# Actions.
INTAKE = "intake"
FILE = "file"
REFUSE = "refuse"
DISPATCH = "dispatch"
ACKNOWLEDGE = "acknowledge"
RETURN = "return"
PROGRESS = "progress"
REQUEST_EXTENSION = "request_extension"
APPROVE_EXTENSION = "approve_extension"
REFUSE_EXTENSION = "refuse_extension"
REPORT = "report"
VERIFY = "verify"
REJECT = "reject"
SUSPEND = "suspend"
RESUME = "resume"
EVALUATE = "evaluate"
ACTIONS: tuple[str, ...] = (
    INTAKE, FILE, REFUSE, DISPATCH, ACKNOWLEDGE, RETURN, PROGRESS, REQUEST_EXTENSION, APPROVE_EXTENSION,
    REFUSE_EXTENSION, REPORT, VERIFY, REJECT, SUSPEND, RESUME, EVALUATE,
)
# Timeline entries the supervisor writes (no status change, no user action).
WARN = "warn"  # a share of the stage's time limit is used up
SUPERVISE = "supervise"  # the deadline passed: under supervision (督办), first reminder
REMIND = "remind"  # a further reminder to the team and its commander
PENALIZE = "penalize"  # reminders went unanswered: marked for penalty
SYSTEM_ACTIONS: tuple[str, ...] = (WARN, SUPERVISE, REMIND, PENALIZE)

# The status a new case has before its first action: "file" (a confirmed flag) or "intake" creates it.
NEW: str | None = None
# Target of `resume`: the status the case had when it was suspended.
PREVIOUS = "<previous>"

_SELF_ACTIONS = (PROGRESS, REQUEST_EXTENSION, APPROVE_EXTENSION, REFUSE_EXTENSION)

TRANSITIONS: Mapping[tuple[str | None, str], str] = MappingProxyType(
    {
        (NEW, FILE): FILED,
        (NEW, INTAKE): REPORTED,
        (REPORTED, FILE): FILED,
        (REPORTED, REFUSE): REFUSED,
        (FILED, DISPATCH): DISPATCHED,
        (FILED, SUSPEND): SUSPENDED,
        (DISPATCHED, ACKNOWLEDGE): HANDLING,
        (DISPATCHED, RETURN): RETURNED,
        **{(DISPATCHED, action): DISPATCHED for action in _SELF_ACTIONS},
        (DISPATCHED, SUSPEND): SUSPENDED,
        (HANDLING, REPORT): HANDLED,
        (HANDLING, RETURN): RETURNED,
        **{(HANDLING, action): HANDLING for action in _SELF_ACTIONS},
        (HANDLING, SUSPEND): SUSPENDED,
        (HANDLED, VERIFY): CLOSED,
        (HANDLED, REJECT): HANDLING,
        (RETURNED, DISPATCH): DISPATCHED,
        (RETURNED, SUSPEND): SUSPENDED,
        (SUSPENDED, RESUME): PREVIOUS,
        (CLOSED, EVALUATE): EVALUATED,
    }
)


def allowed_actions(current: str | None) -> tuple[str, ...]:
    """The actions the table allows from a status, in table order."""
    return tuple(action for (status, action) in TRANSITIONS if status == current)


def next_status(current: str | None, action: str, previous: str | None = None) -> str:
    """The status after `action`; TransitionRefused (naming the current status and what is allowed)
    if the table has no such row. `previous` is where `resume` goes (the status before suspension)."""
    target = TRANSITIONS.get((current, action))
    if target == PREVIOUS:
        if previous is None or previous not in STATUSES or previous == SUSPENDED:
            raise TransitionRefused(
                f"cannot {action}: the status before the suspension is not known", current=current,
                allowed=allowed_actions(current),
            )
        return previous
    if target is not None:
        return target
    allowed = allowed_actions(current)
    shown = current if current is not None else "new"
    if action not in ACTIONS:
        what = f"{action!r} is not a workflow action"
    else:
        what = f"cannot {action} a case that is {shown}"
    if allowed:
        hint = f"from {shown} the allowed actions are: {', '.join(allowed)}"
    else:
        hint = f"a {shown} case allows no further action"
    raise TransitionRefused(f"{what}; {hint}", current=current, allowed=allowed)
