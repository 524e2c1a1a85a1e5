"""The workflow's branches: a team returns a case that is not its remit (the centre re-dispatches),
reports progress, asks for more time (the centre approves with a new deadline or refuses), the
centre suspends what cannot be solved now and resumes it, and the return visit after closing."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fusionhub.dispatch import clock, workflow
from fusionhub.dispatch.access import Viewer, require_role
from fusionhub.dispatch.cases import TASK_RETURNED, CaseService, _note
from fusionhub.dispatch.errors import Invalid, TransitionRefused
from fusionhub.dispatch.models import Case, CaseExtension, Task, User
from fusionhub.dispatch.unit import Unit
from fusionhub.dispatch.worktime import LIMIT_TYPES, Limit

log = logging.getLogger(__name__)

EXT_PENDING, EXT_APPROVED, EXT_REFUSED, EXT_WITHDRAWN = "pending", "approved", "refused", "withdrawn"
MAX_EXTENSION = {"urgent_hours": 24 * 30, "working_hours": 8 * 60, "working_days": 60, "calendar_days": 90}


def _pending(case: Case) -> CaseExtension | None:
    return next((e for e in case.extensions if e.status == EXT_PENDING), None)


def _no_pending(case: Case, action: str) -> TransitionRefused:
    return TransitionRefused(
        f"cannot {action}: case {case.id} has no pending extension request",
        current=case.status,
        allowed=tuple(a for a in workflow.allowed_actions(case.status) if a != action),
    )


class BranchService(CaseService):
    """Return, progress, extension, suspension, return visit."""

    async def return_case(self, viewer: Viewer, case_id: int, reason: str) -> dict[str, Any]:
        """The assigned team sends the case back as not its remit; the centre must re-dispatch it
        (its dispatch clock starts again)."""
        require_role(viewer, "field")
        text = _note(reason, required=True)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._assigned(viewer, case)
            task.status = TASK_RETURNED
            task.done_at = now
            task.done_by = actor.id
            for ext in case.extensions:
                if ext.status == EXT_PENDING:
                    ext.status = EXT_WITHDRAWN
            case.team = None
            armed = self._arm(await unit.calendar(), case, clock.STAGE_DISPATCH, now)
            return {"task_id": task.id, "team_id": task.team_id, "dispatch_due_at": armed.due_at.timestamp()}, task

        return await self._transition(viewer, case_id, workflow.RETURN, text, step, answers=True)

    async def progress_case(self, viewer: Viewer, case_id: int, note: str) -> dict[str, Any]:
        """The assigned team reports progress (and so answers the supervision reminders)."""
        require_role(viewer, "field")
        text = _note(note, required=True)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            task = self._assigned(viewer, case)
            return {"task_id": task.id}, None

        return await self._transition(viewer, case_id, workflow.PROGRESS, text, step, answers=True)

    async def request_extension(
        self, viewer: Viewer, case_id: int, amount: float, reason: str, limit_type: str | None = None
    ) -> dict[str, Any]:
        """The assigned team asks for `amount` more (in the stage limit's units unless `limit_type`
        says otherwise), saying why. One pending request per case."""
        require_role(viewer, "field")
        text = _note(reason, required=True)
        if limit_type is not None and limit_type not in LIMIT_TYPES:
            raise Invalid("limit_type", f"one of {', '.join(LIMIT_TYPES)}")

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            task = self._assigned(viewer, case)
            if _pending(case) is not None:
                raise TransitionRefused(
                    f"case {case.id} already has a pending extension request; wait for the centre's decision",
                    current=case.status,
                    allowed=workflow.allowed_actions(case.status),
                )
            kind = limit_type or (case.clock.limit_type if case.clock is not None else "working_hours")
            if not 0 < amount <= MAX_EXTENSION[kind]:
                raise Invalid("amount", f"more than 0 and at most {MAX_EXTENSION[kind]} ({kind})")
            ext = CaseExtension(
                status=EXT_PENDING,
                limit_type=kind,
                amount=float(amount),
                reason=text or "",
                requested_by=actor.id,
                requested_at=now,
                old_due_at=case.deadline_at,
            )
            ext.id = await unit.new_id(CaseExtension)
            case.extensions.append(ext)
            return {"task_id": task.id, "extension_id": ext.id, "limit": {"type": kind, "amount": float(amount)}}, None

        return await self._transition(viewer, case_id, workflow.REQUEST_EXTENSION, text, step, answers=True)

    async def approve_extension(
        self, viewer: Viewer, case_id: int, note: str | None = None, amount: float | None = None
    ) -> dict[str, Any]:
        """A commander approves the pending request (optionally granting a different amount): the
        deadline moves on, warnings and reminders start afresh."""
        require_role(viewer, "commander")
        text = _note(note, required=False)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task | None]:
            ext = _pending(case)
            if ext is None:
                raise _no_pending(case, workflow.APPROVE_EXTENSION)
            granted = float(amount) if amount is not None else ext.amount
            if not 0 < granted <= MAX_EXTENSION[ext.limit_type]:
                raise Invalid("amount", f"more than 0 and at most {MAX_EXTENSION[ext.limit_type]} ({ext.limit_type})")
            if case.clock is None:
                raise _no_pending(case, workflow.APPROVE_EXTENSION)
            cal = await unit.calendar()
            extra = Limit(clock.as_limit_type(ext.limit_type), granted)
            new_due = clock.extend(case.clock, extra, now, cal, self.supervision())
            ext.status, ext.decided_by, ext.decided_at, ext.decision_note = EXT_APPROVED, actor.id, now, text
            ext.amount, ext.new_due_at = granted, new_due
            case.deadline_at = new_due
            task = case.tasks[-1] if case.tasks else None
            if task is not None:
                task.deadline_at = new_due
            data = {"extension_id": ext.id, "granted": granted, "old_due_at": ext.old_due_at.timestamp() if ext.old_due_at else None,
                    "deadline_at": new_due.timestamp()}
            return data, task

        return await self._transition(viewer, case_id, workflow.APPROVE_EXTENSION, text, step)

    async def refuse_extension(self, viewer: Viewer, case_id: int, reason: str) -> dict[str, Any]:
        """A commander refuses the pending request, saying why; the deadline stands."""
        require_role(viewer, "commander")
        text = _note(reason, required=True)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            ext = _pending(case)
            if ext is None:
                raise _no_pending(case, workflow.REFUSE_EXTENSION)
            ext.status, ext.decided_by, ext.decided_at, ext.decision_note = EXT_REFUSED, actor.id, now, text
            return {"extension_id": ext.id}, None

        return await self._transition(viewer, case_id, workflow.REFUSE_EXTENSION, text, step)

    async def suspend_case(self, viewer: Viewer, case_id: int, reason: str) -> dict[str, Any]:
        """A commander suspends a case that cannot be solved now (缓办): its clock stands still."""
        require_role(viewer, "commander")
        text = _note(reason, required=True)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            case.suspended_from = case.status
            clock.pause(case.clock, now, await unit.calendar())
            remaining = case.clock.remaining if case.clock is not None else None
            return {"suspended_from": case.status, "remaining": remaining}, None

        return await self._transition(viewer, case_id, workflow.SUSPEND, text, step)

    async def resume_case(self, viewer: Viewer, case_id: int, note: str | None = None) -> dict[str, Any]:
        """A commander resumes a suspended case: back to where it was, the deadline moved on by the
        time it stood still."""
        require_role(viewer, "commander")
        text = _note(note, required=False)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task | None]:
            clock.resume(case.clock, now, await unit.calendar(), self.supervision())
            back_to = case.suspended_from
            case.suspended_from = None
            data: dict[str, Any] = {"resumed_to": back_to}
            task: Task | None = None
            if case.clock is not None:
                case.deadline_at = case.clock.due_at
                data["deadline_at"] = case.clock.due_at.timestamp()
                if case.clock.stage == clock.STAGE_HANDLE and case.tasks:
                    task = case.tasks[-1]
                    task.deadline_at = case.clock.due_at
            return data, task

        return await self._transition(viewer, case_id, workflow.RESUME, text, step)

    async def evaluate_case(self, viewer: Viewer, case_id: int, score: int, note: str | None = None) -> dict[str, Any]:
        """Duty records the return visit (回访) of a closed case: satisfaction 1 (bad) to 5 (very good)."""
        require_role(viewer, "duty")
        text = _note(note, required=False)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise Invalid("score", "a whole number from 1 to 5")

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            case.satisfaction = score
            return {"score": score}, None

        return await self._transition(viewer, case_id, workflow.EVALUATE, text, step)
