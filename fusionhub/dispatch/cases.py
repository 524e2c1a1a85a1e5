"""Cases through the workflow (dispatch, acknowledge, report, verify, reject), tasks, attachments.

Every action is one transaction: the status change, its task change and its timeline entry commit
together or not at all; the case's version column refuses a concurrent second writer (Conflict).
Bus messages go out after COMMIT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.interfaces import ORMOption

from fusionhub.dispatch import files, workflow
from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.categories import get_category
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Conflict, Forbidden, Invalid, NotFound
from fusionhub.dispatch.models import Attachment, Case, CaseEvent, Task, Team, User
from fusionhub.dispatch.timeline import append_event, chain_intact
from fusionhub.dispatch.views import case_dict, task_dict
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

TASK_PENDING, TASK_ACKNOWLEDGED, TASK_DONE = "pending", "acknowledged", "done"

# (session, case, actor, now) -> (timeline data, task touched or None)
Step = Callable[[AsyncSession, Case, User, datetime], Awaitable[tuple[dict[str, Any], Task | None]]]


def _case_options(timeline: bool = True) -> list[ORMOption]:
    opts: list[ORMOption] = [
        selectinload(Case.team),
        selectinload(Case.attachments),
        selectinload(Case.tasks).selectinload(Task.team),
    ]
    if timeline:
        opts.append(selectinload(Case.events).selectinload(CaseEvent.actor))
    return opts


def _note(note: str | None, *, required: bool) -> str | None:
    text = (note or "").strip()
    if required and not text:
        raise Invalid("note", "must not be empty")
    if len(text) > 2000:
        raise Invalid("note", "at most 2000 characters")
    return text or None


def _field_may_see(viewer: Viewer, case: Case) -> bool:
    team_id = viewer.get("team_id")
    return team_id is not None and any(t.team_id == team_id for t in case.tasks)


class CaseService(ServiceCore):
    """Cases, their workflow actions, tasks and attachment files."""

    # -- reading --------------------------------------------------------------------------------

    def _visible(self, viewer: Viewer, case: Case | None) -> bool:
        if case is None or not region_visible(viewer, case.region):
            return False
        return viewer["role"] != "field" or _field_may_see(viewer, case)

    async def _case(self, session: AsyncSession, viewer: Viewer, case_id: int, timeline: bool = True) -> Case:
        case = await session.get(Case, case_id, options=_case_options(timeline))
        if not self._visible(viewer, case):
            raise NotFound(f"no case {case_id}")
        assert case is not None
        return case

    async def list_cases(self, viewer: Viewer, status: str | None = None) -> list[dict[str, Any]]:
        """Cases in the viewer's region, newest first, without timelines (field: their team's only)."""
        if status is not None and status not in workflow.STATUSES:
            raise Invalid("status", f"one of {', '.join(workflow.STATUSES)}")
        query = select(Case).where(region_filter(Case.region, viewer)).options(*_case_options(timeline=False))
        if status is not None:
            query = query.where(Case.status == status)
        if viewer["role"] == "field":
            query = query.where(Case.id.in_(select(Task.case_id).where(Task.team_id == viewer.get("team_id"))))
        async with self.read_session() as session:
            cases = await session.scalars(query.order_by(Case.created_at.desc(), Case.id.desc()))
            return [case_dict(c, timeline=False) for c in cases]

    async def get_case(self, viewer: Viewer, case_id: int) -> dict[str, Any]:
        """One case with timeline, tasks and attachments; NotFound if the viewer may not see it."""
        async with self.read_session() as session:
            return case_dict(await self._case(session, viewer, case_id))

    async def list_tasks(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Field: their team's tasks; others: every task in their region. Newest first."""
        query = (
            select(Task, Case)
            .join(Case, Task.case_id == Case.id)
            .where(region_filter(Case.region, viewer))
            .options(selectinload(Task.team))
        )
        if viewer["role"] == "field":
            query = query.where(Task.team_id == viewer.get("team_id"))
        async with self.read_session() as session:
            rows = await session.execute(query.order_by(Task.created_at.desc(), Task.id.desc()))
            return [task_dict(task, case) for task, case in rows]

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
            if await session.get(Case, case_id) is None:
                raise NotFound(f"no case {case_id}")
            events = list(
                await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
            )
        return bool(events) and chain_intact(events)

    # -- the workflow ---------------------------------------------------------------------------

    async def _transition(self, viewer: Viewer, case_id: int, action: str, note: str | None, step: Step) -> dict[str, Any]:
        """Apply one workflow action in one transaction; publish after COMMIT."""
        try:
            async with self.write_session() as session, session.begin():
                case = await self._case(session, viewer, case_id)
                actor = await session.get(User, int(viewer["id"]))
                if actor is None:
                    raise NotFound(f"no user {viewer['id']}")
                before = case.status
                after = workflow.next_status(before, action)
                now = self.now()
                data, task = await step(session, case, actor, now)
                case.status = after
                case.updated_at = now
                append_event(
                    case, actor=actor, action=action, from_status=before, to_status=after, at=now, note=note, data=data
                )
        except (StaleDataError, IntegrityError) as exc:
            current = await self._current_status(case_id)
            log.info("case %s: concurrent %s refused (now %s)", case_id, action, current)
            raise Conflict(
                f"case {case_id} was changed by someone else at the same time; it is now {current}", current=current
            ) from exc
        log.debug("case %s: %s by user %s, %s -> %s", case_id, action, actor.id, before, after)
        messages: list[tuple[Topic, dict[str, Any]]] = [(Topic.CASE_CHANGED, case_dict(case, timeline=False))]
        if task is not None:
            messages.append((Topic.TASK_CHANGED, task_dict(task, case)))
        await self.emit(messages)
        return case_dict(case)

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

    async def dispatch_case(self, viewer: Viewer, case_id: int, team_id: int) -> dict[str, Any]:
        """Commander sends a filed case to a team: a task with the category's deadline."""
        require_role(viewer, "commander")

        async def step(session: AsyncSession, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            team = await session.get(Team, team_id)
            if team is None or not region_visible(viewer, team.region):
                raise Invalid("team_id", f"no team {team_id} in your region")
            deadline = now + timedelta(hours=get_category(case.category).deadline_hours)
            task = Task(team_id=team.id, status=TASK_PENDING, deadline_at=deadline, created_at=now)
            task.team = team
            case.tasks.append(task)
            case.team = team
            case.deadline_at = deadline
            return {"team_id": team.id, "team_name": team.name, "deadline_at": deadline.timestamp()}, task

        return await self._transition(viewer, case_id, workflow.DISPATCH, None, step)

    async def acknowledge_case(self, viewer: Viewer, case_id: int) -> dict[str, Any]:
        """A member of the assigned team takes the task on: the case is being handled."""
        require_role(viewer, "field")

        async def step(session: AsyncSession, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._assigned(viewer, case)
            task.status = TASK_ACKNOWLEDGED
            task.acknowledged_at = now
            task.acknowledged_by = actor.id
            return {"task_id": task.id}, task

        return await self._transition(viewer, case_id, workflow.ACKNOWLEDGE, None, step)

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

        async def step(session: AsyncSession, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._assigned(viewer, case)
            task.status = TASK_DONE
            task.done_at = now
            task.done_by = actor.id
            data: dict[str, Any] = {"task_id": task.id}
            if stored is not None and photo is not None and photo_type is not None:
                att = Attachment(
                    kind="photo",
                    path=stored[0],
                    sha256=stored[1],
                    size=len(photo),
                    content_type=photo_type,
                    created_at=now,
                    created_by=actor.id,
                )
                case.attachments.append(att)
                await session.flush()
                data["attachment_id"] = att.id
                data["photo_sha256"] = stored[1]
            return data, task

        try:
            return await self._transition(viewer, case_id, workflow.REPORT, text, step)
        except Exception:
            if stored is not None:
                await asyncio.to_thread(files.remove_quietly, self.data_dir, stored[0])
            raise

    async def verify_case(self, viewer: Viewer, case_id: int, note: str | None = None) -> dict[str, Any]:
        """Duty checks the handling and closes the case."""
        require_role(viewer, "duty")
        text = _note(note, required=False)

        async def step(session: AsyncSession, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            return {}, None

        return await self._transition(viewer, case_id, workflow.VERIFY, text, step)

    async def reject_case(self, viewer: Viewer, case_id: int, note: str) -> dict[str, Any]:
        """Duty sends the case back to handling (the task reopens); the note says why."""
        require_role(viewer, "duty")
        text = _note(note, required=True)

        async def step(session: AsyncSession, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task]:
            task = self._current_task(case)
            task.status = TASK_ACKNOWLEDGED
            task.done_at = None
            task.done_by = None
            return {"task_id": task.id}, task

        return await self._transition(viewer, case_id, workflow.REJECT, text, step)
