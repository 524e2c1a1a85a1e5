"""The case workflow as a table: (status, action) -> next status. Pure logic, no I/O.

New branches (refuse to file, return to the centre, extension, suspension) are new rows and,
where needed, new statuses; nothing else has to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fusionhub.dispatch.errors import TransitionRefused

# Statuses in workflow order (GB/T 30428: file, dispatch, handle, feedback, verify, close).
FILED = "filed"
DISPATCHED = "dispatched"
HANDLING = "handling"
HANDLED = "handled"
CLOSED = "closed"
STATUSES: tuple[str, ...] = (FILED, DISPATCHED, HANDLING, HANDLED, CLOSED)

# Actions.
FILE = "file"
DISPATCH = "dispatch"
ACKNOWLEDGE = "acknowledge"
REPORT = "report"
VERIFY = "verify"
REJECT = "reject"
ACTIONS: tuple[str, ...] = (FILE, DISPATCH, ACKNOWLEDGE, REPORT, VERIFY, REJECT)

# The status a new case has before its first action: "file" creates it.
NEW: str | None = None

TRANSITIONS: Mapping[tuple[str | None, str], str] = MappingProxyType(
    {
        (NEW, FILE): FILED,
        (FILED, DISPATCH): DISPATCHED,
        (DISPATCHED, ACKNOWLEDGE): HANDLING,
        (HANDLING, REPORT): HANDLED,
        (HANDLED, VERIFY): CLOSED,
        (HANDLED, REJECT): HANDLING,
    }
)


def allowed_actions(current: str | None) -> tuple[str, ...]:
    """The actions the table allows from a status, in table order."""
    return tuple(action for (status, action) in TRANSITIONS if status == current)


def next_status(current: str | None, action: str) -> str:
    """The status after `action`; TransitionRefused (naming the current status) if not allowed."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        pass
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
