"""Cases through the workflow (dispatch, acknowledge, report, verify, reject), tasks, attachments.

Every action is one unit of work (unit.py): the status change, its task change, its clock change
and its timeline entry are written together or not at all; the case's version column refuses a
concurrent second writer (Conflict) — the deadline supervisor bumps it too when it writes to a
case, so a person and the supervisor never interleave on one case either. Bus messages go out
after the write is durable.
The other branches (intake, return, extension, suspension, evaluation) live in intake.py and
branches.py and go through the same `_transition`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from fusionhub.dispatch import board, clock, files, workflow
from fusionhub.dispatch.access import Viewer, region_params, region_visible, require_role
from fusionhub.dispatch.calendar import CalendarService
from fusionhub.dispatch.categories import FALLBACK, Category
from fusionhub.dispatch.errors import Conflict, Forbidden, Invalid, NotFound
from fusionhub.dispatch.models import (
    Attachment,
    Case,
    CaseClock,
    CaseEvent,
    Task,
    User,
)
from fusionhub.dispatch.rules import RuleService
from fusionhub.dispatch.timeline import chain_intact
from fusionhub.dispatch.unit import Stale, Unit, transaction
from fusionhub.dispatch.views import case_dict, task_dict
from fusionhub.dispatch.worktime import WorkCalendar
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

TASK_PENDING, TASK_ACKNOWLEDGED, TASK_DONE, TASK_RETURNED = "pending", "acknowledged", "done", "returned"
MAX_LIST = 2000  # the most a list answers at once (a city has millions of cases)

# (unit, case, actor, now) -> (timeline data, task touched or None); the step changes the unit's
# objects in memory, the unit writes what changed (unit.py)
Step = Callable[[Unit, Case, User, datetime], Awaitable[tuple[dict[str, Any], Task | None]]]


def _case_options(timeline: bool = True) -> list[ORMOption]:
    # one-to-one and many-to-one joined into the statement that loads the rows, collections one
    # statement each: every transition loads the case this way, and each statement is a round trip
    opts: list[ORMOption] = [
        joinedload(Case.team),
        joinedload(Case.clock),
        selectinload(Case.attachments),
        selectinload(Case.tasks).joinedload(Task.team),
        selectinload(Case.extensions),
    ]
    if timeline:
        opts.append(selectinload(Case.events).joinedload(CaseEvent.actor))
    return opts


@functools.cache
def _case_by_id(timeline: bool) -> Select[Case]:
    """One case with what a transition needs, built once: a statement's cache key is computed
    once per statement object, and a fresh one with six loader options cost ~0.3 ms a call here."""
    return select(Case).where(Case.id == bindparam("case_id")).options(*_case_options(timeline))


def _note(note: str | None, *, required: bool) -> str | None:
    text = (note or "").strip()
    if required and not text:
        raise Invalid("note", "must not be empty")
    if len(text) > 2000:
        raise Invalid("note", "at most 2000 characters")
    return text or None


def photo_attachment(stored: tuple[str, str], size: int, content_type: str, actor: User, now: datetime) -> Attachment:
    """The attachment of a stored photo (`files.store_photo`'s path and digest)."""
    return Attachment(
        kind="photo", path=stored[0], sha256=stored[1], size=size, content_type=content_type,
        created_at=now, created_by=actor.id,
    )


def photo_data(att: Attachment) -> dict[str, Any]:
    """The timeline data naming an attached photo."""
    return {"attachment_id": att.id, "photo_sha256": att.sha256}


def _field_may_see(viewer: Viewer, case: Case) -> bool:
    """A field member sees the cases sent to their team and the ones they reported on patrol."""
    if case.reported_by is not None and case.reported_by == viewer.get("id"):
        return True
    team_id = viewer.get("team_id")
    return team_id is not None and any(t.team_id == team_id for t in case.tasks)


class CaseService(RuleService, CalendarService):
    """Cases, their workflow actions, tasks and attachment files."""

    # -- reading --------------------------------------------------------------------------------

    def _visible(self, viewer: Viewer, case: Case | None) -> bool:
        if case is None or not region_visible(viewer, case.region):
            return False
        return viewer["role"] != "field" or _field_may_see(viewer, case)

    async def _case(self, session: AsyncSession, viewer: Viewer, case_id: int, timeline: bool = True) -> Case:
        case = (await session.execute(_case_by_id(timeline), {"case_id": case_id})).scalar_one_or_none()
        if not self._visible(viewer, case):
            raise NotFound(f"no case {case_id}")
        assert case is not None
        return case

    async def list_cases(
        self, viewer: Viewer, status: str | None = None, *, overdue: bool = False, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Cases in the viewer's region, newest first, at most `limit`, without timelines (field:
        their team's only). `overdue`: only cases whose stage clock ran past its deadline, the
        longest overdue first (the supervision board)."""
        if status is not None and status not in workflow.STATUSES:
            raise Invalid("status", f"one of {', '.join(workflow.STATUSES)}")
        if not 1 <= limit <= MAX_LIST:
            raise Invalid("limit", f"between 1 and {MAX_LIST}")
        field = viewer["role"] == "field"
        params: dict[str, Any] = {**region_params(viewer), "limit": limit}
        if status is not None:
            params["status"] = status
        if overdue:
            params["now"] = self.now()
        if field:
            params.update(team_id=viewer.get("team_id"), user_id=viewer.get("id"))
        async with self.read_connection() as conn:
            return await board.cases(conn, params, status=status is not None, overdue=overdue, field=field)

    async def get_case(self, viewer: Viewer, case_id: int) -> dict[str, Any]:
        """One case with timeline, tasks and attachments; NotFound if the viewer may not see it."""
        async with self.read_session() as session:
            return case_dict(await self._case(session, viewer, case_id))

    async def list_tasks(self, viewer: Viewer, *, open_only: bool = False, limit: int = 500) -> list[dict[str, Any]]:
        """Field: their team's tasks; others: every task in their region. Newest first, at most
        `limit`; `open_only`: pending or acknowledged ones (a team's inbox)."""
        if not 1 <= limit <= MAX_LIST:
            raise Invalid("limit", f"between 1 and {MAX_LIST}")
        field = viewer["role"] == "field"
        params: dict[str, Any] = {**region_params(viewer), "limit": limit}
        if field:
            params["team_id"] = viewer.get("team_id")
        async with self.read_connection() as conn:
            return await board.tasks(conn, params, open_only=open_only, field=field)

    async def attachment_path(self, viewer: Viewer, case_id: int, att_id: int) -> tuple[Path, str]:
        """The file of an attachment and its content type; NotFound if not the viewer's or missing."""
        async with self.read_session() as session:
            case = await self._case(session, viewer, case_id, timeline=False)
        att = next((a for a in case.attachments if a.id == att_id), None)
        path = files.resolve(self.data_dir, att.path) if att is not None else None
        if att is None or path is None or not await asyncio.to_thread(path.is_file):
            raise NotFound(f"no attachment {att_id} on case {case_id}")
        return path, att.content_type

    async def verify_timeline(self, case_id: int) -> bool:
        """Recompute the case's hash chain; False if any entry was edited, removed or reordered."""
        async with self.read_session() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}")
            events = list(
                await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
            )
        return chain_intact(events, case.timeline_head)

    # -- time limits ------------------------------------------------------------------------------

    def supervision(self) -> clock.Supervision:
        """The supervision settings of this hub."""
        return clock.Supervision(
            warn_share=self.config.warn_share,
            interval=timedelta(seconds=self.config.reminder_interval_s),
            max_unanswered=self.config.reminders_before_penalty,
        )

    def _category(self, code: str) -> Category:
        # a code the catalog no longer has (an admin removed it) still gets limits: those of `other`
        catalog = self.catalog.current
        return catalog.find(code) or catalog.get(FALLBACK)

    def _arm(self, cal: WorkCalendar, case: Case, stage: str, now: datetime) -> CaseClock:
        """Start the clock of a stage (dispatch: from filing; handle: from dispatch) at `now`; a
        case without a clock gets a new one."""
        cat = self._category(case.category)
        limit = cat.dispatch_limit if stage == clock.STAGE_DISPATCH else cat.handle_limit
        armed = clock.arm(case.clock, stage, limit, now, cal, self.supervision())
        if case.clock is None:
            armed.case_id = case.id
            case.clock = armed
        case.deadline_at = armed.due_at
        return armed

    async def on_case_filed(self, session: AsyncSession, case: Case, now: datetime) -> None:
        """Filing starts the dispatch stage's clock."""
        session.add(self._arm(await self.work_calendar(session), case, clock.STAGE_DISPATCH, now))

    # -- the workflow ---------------------------------------------------------------------------

    async def _transition(
        self,
        viewer: Viewer,
        case_id: int,
        action: str,
        note: str | None,
        step: Step,
        *,
        answers: bool = False,
    ) -> dict[str, Any]:
        """Apply one workflow action as one unit of work (unit.py); publish once it is written.
        `answers`: the action is the team's, so it answers the supervision reminders of the case."""
        try:
            async with transaction(self.write_engine) as io:
                work = Unit(self, io)
                await work.load(case_id, int(viewer["id"]))
                case, actor = work.case, work.actor
                if not self._visible(viewer, case):
                    raise NotFound(f"no case {case_id}")
                assert case is not None
                if actor is None:
                    raise NotFound(f"no user {viewer['id']}")
                before = case.status
                after = workflow.next_status(before, action, previous=case.suspended_from)
                now = self.now()
                data, task = await step(work, case, actor, now)
                if answers:
                    clock.answered(case.clock)
                case.status = after
                case.updated_at = now
                work.append(actor=actor, action=action, from_status=before, to_status=after, at=now, note=note, data=data)
                await work.write(ZoneInfo(self.timezone))
        except (Stale, IntegrityError) as exc:
            current = await self._current_status(case_id)
            log.info("case %s: concurrent %s refused (now %s)", case_id, action, current)
            raise Conflict(
                f"case {case_id} was changed by someone else at the same time; it is now {current}", current=current
            ) from exc
        log.debug("case %s: %s by user %s, %s -> %s", case_id, action, actor.id, before, after)
        reply = work.case_reply()
        changed = {k: v for k, v in reply.items() if k != "timeline"}  # what lists show of a case
        messages: list[tuple[Topic, dict[str, Any]]] = [(Topic.CASE_CHANGED, changed)]
        if task is not None:
            messages.append((Topic.TASK_CHANGED, task_dict(task, case)))
        await self.emit(messages)
        return reply

    async def _current_status(self, case_id: int) -> str | None:
        async with self.read_session() as session:
            return await session.scalar(select(Case.status).where(Case.id == case_id))

    @staticmethod
    def _current_task(case: Case) -> Task:
        if not case.tasks:
            raise Conflict(f"case {case.id} has no task", current=case.status)
        return case.tasks[-1]

    def _assigned(self, viewer: Viewer, case: Case) -> Task:
        task = self._current_task(case)
        if task.team_id != viewer.get("team_id"):
            raise Forbidden(f"case {case.id} is assigned to another team")
        return task

    async def dispatch_case(
        self, viewer: Viewer, case_id: int, team_id: int | None = None, user_id: int | None = None
    ) -> dict[str, Any]:
        """Commander sends a filed (or returned) case to a team, or to a named person of a team: a
        task with the category's handling limit, counted from now. Without `team_id` the
        auto-dispatch rules choose (Invalid when none matches)."""
        require_role(viewer, "commander")
        if team_id is None and user_id is not None:
            raise Invalid("team_id", "name the team of the person")

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            assignee: User | None = None
            rule_id: int | None = None
            if team_id is None:
                rule = await unit.rule(case.category, case.region)
                if rule is None:
                    raise Invalid(
                        "team_id",
                        f"no auto-dispatch rule matches category {case.category} in region {case.region}; choose a team",
                    )
                team, assignee, rule_id = rule.team, rule.user, rule.id
            else:
                found = await unit.team(team_id)
                if found is None or not region_visible(viewer, found.region):
                    raise Invalid("team_id", f"no team {team_id} in your region")
                team = found
                if user_id is not None:
                    assignee = await unit.user(user_id)
                    if assignee is None or assignee.role != "field" or assignee.team_id != team.id:
                        raise Invalid("user_id", f"user {user_id} is not a field member of team {team.id}")
            armed = self._arm(await unit.calendar(), case, clock.STAGE_HANDLE, now)
            task = Task(
                team_id=team.id,
                status=TASK_PENDING,
                deadline_at=armed.due_at,
                created_at=now,
                assignee_id=assignee.id if assignee is not None else None,
            )
            task.team = team
            case.tasks.append(task)
            case.team = team
            data: dict[str, Any] = {
                "team_id": team.id,
                "team_name": team.name,
                "deadline_at": armed.due_at.timestamp(),
                "limit": {"type": armed.limit_type, "amount": armed.limit_amount},
            }
            if assignee is not None:
                data.update(assignee_id=assignee.id, assignee_name=assignee.display_name)
            if rule_id is not None:
                data["rule_id"] = rule_id
            return data, task

        return await self._transition(viewer, case_id, workflow.DISPATCH, None, step)

    async def acknowledge_case(self, viewer: Viewer, case_id: int) -> dict[str, Any]:
        """A member of the assigned team takes the task on: the case is being handled."""
        require_role(viewer, "field")

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._assigned(viewer, case)
            task.status = TASK_ACKNOWLEDGED
            task.acknowledged_at = now
            task.acknowledged_by = actor.id
            return {"task_id": task.id}, task

        return await self._transition(viewer, case_id, workflow.ACKNOWLEDGE, None, step, answers=True)

    async def report_handled(
        self,
        viewer: Viewer,
        case_id: int,
        note: str,
        photo: bytes | None = None,
        photo_type: str | None = None,
    ) -> dict[str, Any]:
        """The assigned team reports the case handled, with a note and optionally a JPEG/PNG photo ≤ 5 MB."""
        require_role(viewer, "field")
        text = _note(note, required=True)
        stored: tuple[str, str] | None = None
        if photo is not None:
            suffix = files.check_photo(photo, photo_type)
            # refuse before writing a file when the action cannot succeed anyway
            async with self.read_session() as session:
                probe = await self._case(session, viewer, case_id, timeline=False)
            self._assigned(viewer, probe)
            workflow.next_status(probe.status, workflow.REPORT)
            stored = await asyncio.to_thread(files.store_photo, self.data_dir, photo, suffix)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._assigned(viewer, case)
            task.status = TASK_DONE
            task.done_at = now
            task.done_by = actor.id
            # the centre's verification time does not count against the team: the clock stands still
            clock.pause(case.clock, now, await unit.calendar())
            for ext in case.extensions:
                if ext.status == "pending":
                    ext.status = "withdrawn"
            data: dict[str, Any] = {"task_id": task.id}
            if case.deadline_at is not None:
                data["on_time"] = now <= case.deadline_at
            if stored is not None and photo is not None and photo_type is not None:
                att = photo_attachment(stored, len(photo), photo_type, actor, now)
                att.id = await unit.new_id(Attachment)
                case.attachments.append(att)
                data.update(photo_data(att))
            return data, task

        try:
            return await self._transition(viewer, case_id, workflow.REPORT, text, step, answers=True)
        except Exception:
            if stored is not None:
                await asyncio.to_thread(files.remove_quietly, self.data_dir, stored[0])
            raise

    async def verify_case(self, viewer: Viewer, case_id: int, note: str | None = None) -> dict[str, Any]:
        """Duty checks the handling and closes the case."""
        require_role(viewer, "duty")
        text = _note(note, required=False)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            clock.stop(case.clock)
            return {}, None

        return await self._transition(viewer, case_id, workflow.VERIFY, text, step)

    async def reject_case(self, viewer: Viewer, case_id: int, note: str) -> dict[str, Any]:
        """Duty sends the case back to handling (the task reopens); the note says why."""
        require_role(viewer, "duty")
        text = _note(note, required=True)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._current_task(case)
            task.status = TASK_ACKNOWLEDGED
            task.done_at = None
            task.done_by = None
            # back to handling: the team's clock runs on from where the report stopped it
            clock.resume(case.clock, now, await unit.calendar(), self.supervision())
            case.deadline_at = case.clock.due_at if case.clock is not None else case.deadline_at
            task.deadline_at = case.deadline_at
            return {"task_id": task.id, "deadline_at": case.deadline_at.timestamp() if case.deadline_at else None}, task

        return await self._transition(viewer, case_id, workflow.REJECT, text, step)
