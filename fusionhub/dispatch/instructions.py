"""One-click tasking: a commander's instruction to several teams and named people at once.

Each recipient (a team, answered by any of its members, or one named field user) acknowledges and
then reports. A recipient that has not acknowledged within the instruction's window escalates:
the escalator (escalation.py) claims the row with a guarded UPDATE in the transaction that marks
it escalated and writes the messages to the outbox, so across restarts and several hub processes
each recipient escalates exactly once and the news is never lost.

Acknowledging and reporting are guarded the same way: of two team members acting at once, one
succeeds and the other gets Conflict naming who was first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import ORMOption

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.claims import claim_rows
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Conflict, Invalid, NotFound
from fusionhub.dispatch.instruction_views import (
    ACKNOWLEDGED,
    ESCALATED,
    PENDING,
    REPORTED,
    escalation_dict,
    instruction_dict,
)
from fusionhub.dispatch.models import Case, Instruction, InstructionRecipient, Team, User, UtcDateTime
from fusionhub.dispatch.outbox import enqueue
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("patrol", "emergency", "notice")
# minutes a recipient has to acknowledge before it escalates, when the sender does not say
DEFAULT_ACK_MINUTES = {"emergency": 5, "patrol": 15, "notice": 60}
MAX_RECIPIENTS = 200
MAX_TEXT = 2000
MAX_AHEAD = timedelta(days=30)
STAFF = ("admin", "commander", "duty")

R = InstructionRecipient


def _options() -> list[ORMOption]:
    return [
        selectinload(Instruction.creator),
        selectinload(Instruction.case),
        selectinload(Instruction.recipients).options(
            selectinload(R.team), selectinload(R.user), selectinload(R.acknowledger), selectinload(R.reporter)
        ),
    ]


def _concerns(viewer: Viewer, rec: InstructionRecipient) -> bool:
    """Whether a recipient row is the viewer's to answer: their team's, or theirs by name."""
    if rec.user_id is not None:
        return rec.user_id == viewer["id"]
    return viewer.get("team_id") is not None and rec.team_id == viewer["team_id"]


def _field_filter(viewer: Viewer) -> ColumnElement[bool]:
    """SQL: the instruction has a recipient row that is the viewer's."""
    mine = R.user_id == viewer["id"]
    if viewer.get("team_id") is not None:
        mine = or_(mine, R.team_id == viewer["team_id"])
    return exists(select(R.id).where(R.instruction_id == Instruction.id, mine))


def _staff_filter(viewer: Viewer) -> ColumnElement[bool]:
    """SQL: sent from the viewer's region (or below), or to a recipient there."""
    return or_(
        region_filter(Instruction.region, viewer),
        exists(select(R.id).where(R.instruction_id == Instruction.id, region_filter(R.region, viewer))),
    )


def _text(value: str, field: str) -> str:
    text = (value or "").strip()
    if not text:
        raise Invalid(field, "must not be empty")
    if len(text) > MAX_TEXT:
        raise Invalid(field, f"at most {MAX_TEXT} characters")
    return text


def _unique(ids: Sequence[int], field: str) -> list[int]:
    out = list(dict.fromkeys(int(i) for i in ids))
    if len(out) > MAX_RECIPIENTS:
        raise Invalid(field, f"at most {MAX_RECIPIENTS}")
    return out


class InstructionService(ServiceCore):
    """Instructions (one-click tasking) and their escalation."""

    # -- reading --------------------------------------------------------------------------------

    def _may_see(self, viewer: Viewer, instr: Instruction) -> bool:
        if viewer["role"] == "field":
            return any(_concerns(viewer, r) for r in instr.recipients)
        return region_visible(viewer, instr.region) or any(region_visible(viewer, r.region) for r in instr.recipients)

    async def _load(self, session: AsyncSession, viewer: Viewer | None, instruction_id: int) -> Instruction:
        instr = await session.scalar(
            select(Instruction)
            .where(Instruction.id == instruction_id)
            .options(*_options())
            .execution_options(populate_existing=True)
        )
        if instr is None or (viewer is not None and not self._may_see(viewer, instr)):
            raise NotFound(f"no instruction {instruction_id}")
        return instr

    async def list_instructions(self, viewer: Viewer, *, limit: int = 100, open_only: bool = False) -> list[dict[str, Any]]:
        """Newest first. Field users: the instructions with a recipient row of theirs; staff: those
        sent from their region or to a recipient in it. `open_only` leaves out cancelled ones and
        ones every recipient has reported."""
        if not 1 <= limit <= 500:
            raise Invalid("limit", "between 1 and 500")
        query = select(Instruction).options(*_options())
        query = query.where(_field_filter(viewer) if viewer["role"] == "field" else _staff_filter(viewer))
        if open_only:
            query = query.where(
                Instruction.cancelled_at.is_(None),
                exists(select(R.id).where(R.instruction_id == Instruction.id, R.status != REPORTED)),
            )
        query = query.order_by(Instruction.created_at.desc(), Instruction.id.desc()).limit(limit)
        now = self.now()
        async with self.read_session() as session:
            return [instruction_dict(i, now) for i in await session.scalars(query)]

    async def get_instruction(self, viewer: Viewer, instruction_id: int) -> dict[str, Any]:
        """One instruction with each recipient's status; NotFound if the viewer may not see it."""
        async with self.read_session() as session:
            return instruction_dict(await self._load(session, viewer, instruction_id), self.now())

    async def instruction_photo_path(self, viewer: Viewer, instruction_id: int, recipient_id: int) -> tuple[Path, str]:
        """The photo a recipient reported with, and its content type."""
        async with self.read_session() as session:
            instr = await self._load(session, viewer, instruction_id)
        rec = next((r for r in instr.recipients if r.id == recipient_id), None)
        path = files.resolve(self.data_dir, rec.photo_path) if rec is not None and rec.photo_path else None
        if rec is None or path is None or not await asyncio.to_thread(path.is_file):
            raise NotFound(f"no photo for recipient {recipient_id} of instruction {instruction_id}")
        return path, rec.photo_type or "image/jpeg"

    async def tasking_directory(self, viewer: Viewer) -> dict[str, Any]:
        """Whom a commander can task: the teams and the field users of their region."""
        require_role(viewer, "commander", "duty")
        async with self.read_session() as session:
            teams = list(await session.scalars(select(Team).where(region_filter(Team.region, viewer)).order_by(Team.id)))
            people = list(
                await session.scalars(
                    select(User)
                    .where(User.role == "field", region_filter(User.region, viewer))
                    .options(selectinload(User.team))
                    .order_by(User.display_name, User.id)
                )
            )
        return {
            "teams": [{"id": t.id, "name": t.name, "region": t.region} for t in teams],
            "people": [
                {
                    "id": u.id,
                    "display_name": u.display_name,
                    "username": u.username,
                    "region": u.region,
                    "team_id": u.team_id,
                    "team_name": u.team.name if u.team is not None else None,
                }
                for u in people
            ],
        }

    # -- sending and cancelling -----------------------------------------------------------------

    async def create_instruction(
        self,
        viewer: Viewer,
        *,
        kind: str,
        text: str,
        deadline_at: float,
        team_ids: Sequence[int] = (),
        user_ids: Sequence[int] = (),
        case_id: int | None = None,
        ack_within_min: int | None = None,
    ) -> dict[str, Any]:
        """A commander sends an instruction to teams and named field users of their region at once."""
        require_role(viewer, "commander")
        if kind not in KINDS:
            raise Invalid("kind", f"one of {', '.join(KINDS)}")
        body = _text(text, "text")
        teams_wanted, users_wanted = _unique(team_ids, "team_ids"), _unique(user_ids, "user_ids")
        if not teams_wanted and not users_wanted:
            raise Invalid("recipients", "name at least one team or person")
        minutes = DEFAULT_ACK_MINUTES[kind] if ack_within_min is None else ack_within_min
        if not 1 <= minutes <= 24 * 60:
            raise Invalid("ack_within_min", "between 1 and 1440 minutes")
        now = self.now()
        try:
            deadline = datetime.fromtimestamp(float(deadline_at), now.tzinfo)
        except (OverflowError, OSError, ValueError) as exc:
            raise Invalid("deadline_at", "not a time") from exc
        if not now < deadline <= now + MAX_AHEAD:
            raise Invalid("deadline_at", "must be in the future, at most 30 days ahead")
        ack_due = now + timedelta(minutes=minutes)

        async with self.write_session() as session, session.begin():
            if case_id is not None:
                case = await session.get(Case, case_id)
                if case is None or not region_visible(viewer, case.region):
                    raise Invalid("case_id", f"no case {case_id} in your region")
            teams = {t.id: t for t in await session.scalars(select(Team).where(Team.id.in_(teams_wanted)))}
            users = {u.id: u for u in await session.scalars(select(User).where(User.id.in_(users_wanted)))}
            for team_id in teams_wanted:
                if team_id not in teams or not region_visible(viewer, teams[team_id].region):
                    raise Invalid("team_ids", f"no team {team_id} in your region")
            for user_id in users_wanted:
                user = users.get(user_id)
                if user is None or not region_visible(viewer, user.region):
                    raise Invalid("user_ids", f"no user {user_id} in your region")
                if user.role != "field":
                    raise Invalid("user_ids", f"{user.username} is not a field user and cannot answer on the field page")
            instr = Instruction(
                kind=kind,
                text=body,
                case_id=case_id,
                region=str(viewer["region"]),
                created_by=int(viewer["id"]),
                created_at=now,
                deadline_at=deadline,
                ack_within_s=minutes * 60,
            )
            instr.recipients = [
                R(team_id=t, region=teams[t].region, status=PENDING, ack_due_at=ack_due) for t in teams_wanted
            ] + [R(user_id=u, region=users[u].region, status=PENDING, ack_due_at=ack_due) for u in users_wanted]
            session.add(instr)
        async with self.read_session() as session:
            out = instruction_dict(await self._load(session, None, instr.id), now)
        log.info(
            "instruction %s (%s) sent by user %s to %d team(s), %d person(s)",
            instr.id, kind, viewer["id"], len(teams_wanted), len(users_wanted),
        )
        await self.emit([(Topic.INSTRUCTION_CHANGED, out)])
        return out

    async def cancel_instruction(self, viewer: Viewer, instruction_id: int) -> dict[str, Any]:
        """A commander calls an instruction off: nobody answers or escalates any more."""
        require_role(viewer, "commander")
        now = self.now()
        async with self.write_session() as session, session.begin():
            instr = await self._load(session, viewer, instruction_id)
            if instr.cancelled_at is not None:
                raise Conflict(f"instruction {instruction_id} was cancelled already", current="cancelled")
            instr.cancelled_at = now
            instr.cancelled_by = int(viewer["id"])
            for rec in instr.recipients:
                rec.ack_due_at = None  # the escalator looks only at rows with a due time
        return await self._answer_after(viewer, instruction_id, now)

    # -- answering ------------------------------------------------------------------------------

    async def _mine(self, session: AsyncSession, viewer: Viewer, instruction_id: int) -> list[int]:
        instr = await self._load(session, viewer, instruction_id)
        if instr.cancelled_at is not None:
            raise Conflict(f"instruction {instruction_id} was cancelled", current="cancelled")
        return [r.id for r in instr.recipients if _concerns(viewer, r)]

    async def _refuse(self, instruction_id: int, ids: list[int], what: str) -> Conflict:
        async with self.read_session() as session:
            rows = list(await session.scalars(select(R).where(R.id.in_(ids)).options(
                selectinload(R.acknowledger), selectinload(R.reporter))))
        done = next((r for r in rows if r.status == REPORTED), None) or next(
            (r for r in rows if r.status == ACKNOWLEDGED), None
        )
        current = done.status if done is not None else None
        who = None
        if done is not None:
            person = done.reporter if done.status == REPORTED else done.acknowledger
            who = person.display_name if person is not None else None
        by = f" by {who}" if who else ""
        return Conflict(f"instruction {instruction_id}: cannot {what}, it was {current or 'answered'}{by} already", current=current)

    async def acknowledge_instruction(self, viewer: Viewer, instruction_id: int) -> dict[str, Any]:
        """A field user acknowledges: their own row and their team's row (if pending or escalated)."""
        require_role(viewer, "field")
        now = self.now()
        async with self.write_session() as session, session.begin():
            ids = await self._mine(session, viewer, instruction_id)
            won = await claim_rows(
                session,
                R,
                candidates=select(R.id).where(R.id.in_(ids)),
                guard=R.status.in_((PENDING, ESCALATED)),
                values={R.status: ACKNOWLEDGED, R.acknowledged_at: now, R.acknowledged_by: int(viewer["id"])},
            )
        if not won:
            raise await self._refuse(instruction_id, ids, "acknowledge")
        log.info("instruction %s acknowledged by user %s (recipients %s)", instruction_id, viewer["id"], won)
        return await self._answer_after(viewer, instruction_id, now)

    async def report_instruction(
        self,
        viewer: Viewer,
        instruction_id: int,
        note: str,
        photo: bytes | None = None,
        photo_type: str | None = None,
    ) -> dict[str, Any]:
        """A field user reports what was done (a note, optionally a JPEG/PNG photo ≤ 5 MB); it
        acknowledges too if that had not happened yet."""
        require_role(viewer, "field")
        text = _text(note, "note")
        stored: tuple[str, str] | None = None
        if photo is not None:
            suffix = files.check_photo(photo, photo_type)
            stored = await asyncio.to_thread(files.store_photo, self.data_dir, photo, suffix)
        now = self.now()
        at = literal(now, UtcDateTime())
        try:
            async with self.write_session() as session, session.begin():
                ids = await self._mine(session, viewer, instruction_id)
                won = await claim_rows(
                    session,
                    R,
                    candidates=select(R.id).where(R.id.in_(ids)),
                    guard=R.status.in_((PENDING, ESCALATED, ACKNOWLEDGED)),
                    values={
                        R.status: REPORTED,
                        R.reported_at: now,
                        R.reported_by: int(viewer["id"]),
                        R.report_note: text,
                        R.photo_path: stored[0] if stored else None,
                        R.photo_sha256: stored[1] if stored else None,
                        R.photo_type: photo_type if stored else None,
                        R.acknowledged_at: func.coalesce(R.acknowledged_at, at),
                        R.acknowledged_by: func.coalesce(R.acknowledged_by, int(viewer["id"])),
                    },
                )
            if not won:
                raise await self._refuse(instruction_id, ids, "report")
        except Exception:
            if stored is not None:
                await asyncio.to_thread(files.remove_quietly, self.data_dir, stored[0])
            raise
        log.info("instruction %s reported by user %s (recipients %s)", instruction_id, viewer["id"], won)
        return await self._answer_after(viewer, instruction_id, now)

    async def _answer_after(self, viewer: Viewer, instruction_id: int, now: datetime) -> dict[str, Any]:
        """Reload after COMMIT, publish the new state, return it."""
        async with self.read_session() as session:
            out = instruction_dict(await self._load(session, None, instruction_id), now)
        await self.emit([(Topic.INSTRUCTION_CHANGED, out)])
        return out

    # -- escalation -----------------------------------------------------------------------------

    async def escalate_due(self, *, limit: int = 100) -> int:
        """Escalate up to `limit` recipients whose acknowledgement is overdue; how many this call did.

        The claim, the status change and the outbox messages commit together: a recipient
        escalates exactly once whichever process (or restart) gets to it first.
        """
        now = self.now()
        due = and_(R.status == PENDING, R.ack_due_at <= now)
        async with self.read_session() as session:
            # most rounds find nothing: look before taking a write lock (BEGIN IMMEDIATE on SQLite)
            if await session.scalar(select(R.id).where(due).limit(1)) is None:
                return 0
        async with self.write_session() as session, session.begin():
            won = await claim_rows(
                session,
                R,
                candidates=select(R.id).where(due).order_by(R.ack_due_at, R.id).limit(limit),
                guard=due,
                values={R.status: ESCALATED, R.escalated_at: now},
                skip_locked=True,
            )
            if not won:
                return 0
            instruction_ids = set(await session.scalars(select(R.instruction_id).where(R.id.in_(won))))
            messages: list[tuple[Topic, dict[str, Any]]] = []
            for instruction_id in sorted(instruction_ids):
                instr = await self._load(session, None, instruction_id)
                messages += [
                    (Topic.INSTRUCTION_ESCALATED, escalation_dict(instr, r)) for r in instr.recipients if r.id in won
                ]
                messages.append((Topic.INSTRUCTION_CHANGED, instruction_dict(instr, now)))
            enqueue(session, messages, now)
        log.info("escalated %d unacknowledged recipient(s) of %d instruction(s)", len(won), len(instruction_ids))
        return len(won)
