"""Video calls on record: a case's timeline lists each call's start and end, and its snapshots.

The live call (ringing, answered, media) belongs to the console and media; dispatch keeps what
must survive: `call_started` / `call_ended` timeline entries (written from `CallChanged` events
on the bus, idempotently: a redelivered event adds nothing) and snapshots of the field video
stored as case attachments of kind "snapshot" with a `call_snapshot` timeline entry; each
party's recording (an MP4 written by media, announced as `CallRecorded`) as an attachment of
kind "recording" with a `call_recording` timeline entry carrying its sha256.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer, require_role
from fusionhub.dispatch.cases import CaseService, _case_options
from fusionhub.dispatch.errors import Invalid, NotFound
from fusionhub.dispatch.models import Attachment, Case, User, to_datetime
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.views import case_dict
from fusionhub.signaling.messages import CallChanged, CallRecorded, Topic

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_STARTED, CALL_ENDED, CALL_SNAPSHOT = "call_started", "call_ended", "call_snapshot"
CALL_RECORDING, RECORDING_KIND = "call_recording", "recording"
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024


async def _retrying(store: Callable[[], Awaitable[T]]) -> T:
    """Run a timeline write, again (up to 3 times) when a concurrent append took the same seq
    (or changed the case's head first)."""
    for attempt in range(3):
        try:
            return await store()
        except (IntegrityError, StaleDataError):
            if attempt == 2:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


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
        return await _retrying(lambda: self._store_call_entry(msg, action))

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
            return await _retrying(lambda: self._store_snapshot(viewer, case_id, call_id, stored, len(jpeg), source))
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

    async def record_call_recording(self, msg: CallRecorded) -> bool:
        """Attach one party's call recording to the case with a `call_recording` timeline entry,
        once (a redelivered event adds nothing). Invalid (a ValueError) when the path leaves the
        data directory; False when the case is gone or it was stored already."""
        if not files.is_safe_relative(msg.path) or not msg.path.endswith(".mp4"):
            raise Invalid("path", "a recording must be an .mp4 inside the data directory")
        return await _retrying(lambda: self._store_recording(msg))

    async def _store_recording(self, msg: CallRecorded) -> bool:
        async with self.write_session() as session, session.begin():
            case = await session.get(Case, msg.case_id, options=_case_options())
            if case is None:
                log.warning("call %s: case %s is gone; recording %s not attached", msg.call_id, msg.case_id, msg.path)
                return False
            if any(a.path == msg.path for a in case.attachments):
                return False
            party = await session.get(User, msg.user_id)
            att = Attachment(
                kind=RECORDING_KIND, path=msg.path, sha256=msg.sha256, size=msg.size, content_type="video/mp4",
                created_at=to_datetime(msg.ended_at), created_by=party.id if party is not None else None,
            )
            case.attachments.append(att)
            await session.flush()
            url = f"/api/v1/cases/{case.id}/attachments/{att.id}"
            append_event(
                case, actor=party, action=CALL_RECORDING, from_status=case.status, to_status=case.status,
                at=to_datetime(msg.ended_at),
                data={
                    "call_id": msg.call_id, "attachment_id": att.id, "user_id": msg.user_id, "name": msg.name,
                    "started_at": msg.started_at, "ended_at": msg.ended_at, "duration_s": msg.duration_s,
                    "has_audio": msg.has_audio, "truncated": msg.truncated, "sha256": msg.sha256, "size": msg.size,
                    "url": url,
                },
            )
        await self.emit([(Topic.CASE_CHANGED, case_dict(case, timeline=False))])
        return True
