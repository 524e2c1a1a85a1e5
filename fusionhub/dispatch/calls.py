"""Video calls on record: a case's timeline lists each call's start and end, and its snapshots.

The live call (ringing, answered, media) belongs to the console and media; dispatch keeps what
must survive: `call_started` / `call_ended` timeline entries (written from `CallChanged` events
on the bus, idempotently: a redelivered event adds nothing) and snapshots of the field video
stored as case attachments of kind "snapshot" with a `call_snapshot` timeline entry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer, require_role
from fusionhub.dispatch.cases import CaseService, _case_options
from fusionhub.dispatch.errors import Invalid, NotFound
from fusionhub.dispatch.models import Attachment, Case, User, to_datetime
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.views import case_dict
from fusionhub.signaling.messages import CallChanged, Topic

log = logging.getLogger(__name__)

CALL_STARTED, CALL_ENDED, CALL_SNAPSHOT = "call_started", "call_ended", "call_snapshot"
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024


class CallRecordService(CaseService):
    """Call timeline entries and call snapshots."""

    async def record_call(self, msg: CallChanged) -> bool:
        """Write `call_started` (state active) or `call_ended` (state ended) once into the case's
        timeline; other states and repeats change nothing. Returns whether an entry was added."""
        if msg.state == "active":
            action = CALL_STARTED
        elif msg.state == "ended":
            action = CALL_ENDED
        else:
            return False
        for attempt in range(3):
            try:
                return await self._store_call_entry(msg, action)
            except IntegrityError:
                # a concurrent timeline append took the same seq: read again and retry
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return False

    async def _store_call_entry(self, msg: CallChanged, action: str) -> bool:
        async with self.write_session() as session, session.begin():
            case = await session.get(Case, msg.case_id, options=_case_options())
            if case is None:
                log.warning("call %s: case %s is gone; not recorded", msg.call_id, msg.case_id)
                return False
            if any(e.action == action and (e.data or {}).get("call_id") == msg.call_id for e in case.events):
                return False
            caller = await session.get(User, msg.caller_id)
            at = msg.started_at if action == CALL_STARTED and msg.started_at is not None else msg.at
            data: dict[str, Any] = {
                "call_id": msg.call_id,
                "caller_id": msg.caller_id,
                "participants": [p.model_dump(mode="json") for p in msg.participants],
            }
            if action == CALL_ENDED:
                data.update(
                    end_reason=msg.end_reason,
                    started_at=msg.started_at,
                    ended_at=msg.at,
                    duration_s=round(msg.at - msg.started_at, 1) if msg.started_at is not None else 0.0,
                    answered=msg.started_at is not None,
                    camera_ids=list(msg.camera_ids),
                    terminal_ids=list(msg.terminal_ids),
                )
            append_event(
                case, actor=caller, action=action, from_status=case.status, to_status=case.status,
                at=to_datetime(at), data=data,
            )
        await self.emit([(Topic.CASE_CHANGED, case_dict(case, timeline=False))])
        return True

    async def add_call_snapshot(self, viewer: Viewer, case_id: int, call_id: str, jpeg: bytes, *, source: str) -> dict[str, Any]:
        """Store a JPEG of the call's field video as a "snapshot" attachment of the case, with a
        `call_snapshot` timeline entry. Returns {"attachment_id", "sha256", "url"}."""
        require_role(viewer, "commander", "duty")
        if not jpeg.startswith(b"\xff\xd8\xff") or len(jpeg) > MAX_SNAPSHOT_BYTES:
            raise Invalid("snapshot", "not a JPEG picture of at most 8 MB")
        stored = await asyncio.to_thread(files.store_photo, self.data_dir, jpeg, ".jpg")
        try:
            for attempt in range(3):
                try:
                    return await self._store_snapshot(viewer, case_id, call_id, stored, len(jpeg), source)
                except IntegrityError:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
            raise Invalid("snapshot", "could not be stored; try again")
        except BaseException:
            await asyncio.to_thread(files.remove_quietly, self.data_dir, stored[0])
            raise

    async def _store_snapshot(
        self, viewer: Viewer, case_id: int, call_id: str, stored: tuple[str, str], size: int, source: str
    ) -> dict[str, Any]:
        async with self.write_session() as session, session.begin():
            case = await self._case(session, viewer, case_id)
            actor = await session.get(User, int(viewer["id"]))
            if actor is None:
                raise NotFound("no such user")
            now = self.now()
            att = Attachment(
                kind="snapshot", path=stored[0], sha256=stored[1], size=size, content_type="image/jpeg",
                created_at=now, created_by=actor.id,
            )
            case.attachments.append(att)
            await session.flush()
            url = f"/api/v1/cases/{case.id}/attachments/{att.id}"
            append_event(
                case, actor=actor, action=CALL_SNAPSHOT, from_status=case.status, to_status=case.status, at=now,
                data={"call_id": call_id, "attachment_id": att.id, "sha256": stored[1], "source": source, "url": url},
            )
        await self.emit([(Topic.CASE_CHANGED, case_dict(case, timeline=False))])
        return {"attachment_id": att.id, "sha256": stored[1], "url": url}
