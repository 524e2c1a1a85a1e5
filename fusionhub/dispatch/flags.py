"""The review queue: flags from analytics (stored once), confirmed into cases or dismissed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from fusionhub.dispatch import files, workflow
from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.categories import category_for_rule, get_category
from fusionhub.dispatch.errors import AlreadyReviewed, Invalid, NotFound
from fusionhub.dispatch.models import Attachment, Camera, Case, Flag, User, Zone, to_datetime
from fusionhub.dispatch.review import ATTACHED, ReviewService
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.views import case_dict, flag_dict
from fusionhub.signaling.messages import FlagRaised, Topic

log = logging.getLogger(__name__)

PENDING, CONFIRMED, DISMISSED = "pending", "confirmed", "dismissed"
FLAG_STATUSES = (PENDING, CONFIRMED, DISMISSED, ATTACHED)
FLAG_READERS = ("admin", "commander", "duty")


class FlagService(ReviewService):
    """Flags: recorded idempotently, listed for review, confirmed (→ case) or dismissed."""

    async def _flag(self, session: AsyncSession, viewer: Viewer, flag_id: str) -> Flag:
        flag = await session.get(Flag, flag_id, options=[selectinload(Flag.reviewer)])
        if flag is None or not region_visible(viewer, flag.region):
            raise NotFound(f"no flag {flag_id}")
        return flag

    async def _actor(self, session: AsyncSession, viewer: Viewer) -> User:
        user = await session.get(User, int(viewer["id"]))
        if user is None:
            raise NotFound(f"no user {viewer['id']}")
        return user

    async def record_flag(self, msg: FlagRaised) -> dict[str, Any]:
        """Store a raised flag once; a redelivered event returns the stored flag and publishes nothing.
        A flag from a zone whose case is still open joins that case (status "attached", the case's
        timeline says "still present") instead of entering the review queue.

        Invalid (a ValueError) when the camera is unknown or the evidence path leaves the data directory.
        An empty evidence path (analytics could not write the picture) is kept: the flag still counts.
        """
        if msg.evidence_path and not files.is_safe_relative(msg.evidence_path):
            raise Invalid("evidence_path", "must be a path inside the data directory")
        if msg.frame_path is not None and not files.is_safe_relative(msg.frame_path):
            raise Invalid("frame_path", "must be a path inside the data directory")
        created = False
        open_case: Case | None = None
        timeline_grew = False
        try:
            async with self.write_session() as session, session.begin():
                flag = await session.get(Flag, msg.flag_id, options=[selectinload(Flag.reviewer)])
                if flag is None:
                    camera = await session.get(Camera, msg.camera_id)
                    if camera is None:
                        raise Invalid("camera_id", f"no camera {msg.camera_id}")
                    zone = await session.get(Zone, msg.zone_id)
                    flag = Flag(
                        id=msg.flag_id,
                        camera_id=camera.id,
                        camera_name=camera.name,
                        zone_id=zone.id if zone is not None and zone.camera_id == camera.id else None,
                        zone_name=msg.zone_name,
                        rule=msg.rule,
                        label=msg.label,
                        confidence=msg.confidence,
                        boxes=[b.model_dump(mode="json") for b in msg.boxes],
                        frame_width=msg.frame_width,
                        frame_height=msg.frame_height,
                        evidence_path=msg.evidence_path,
                        frame_path=msg.frame_path,
                        first_seen_at=to_datetime(msg.first_seen_at),
                        raised_at=to_datetime(msg.raised_at),
                        recorded_at=self.now(),
                        status=PENDING,
                        region=camera.region,
                    )
                    flag.reviewer = None
                    open_case = await self.open_case_of_zone(session, camera.id, flag.zone_id)
                    if open_case is not None:
                        timeline_grew = self.attach_flag(open_case, flag, msg)
                    session.add(flag)
                    created = True
        except IntegrityError:
            # the same event delivered twice at once: the other delivery stored it
            async with self.read_session() as session:
                stored = await session.get(Flag, msg.flag_id, options=[selectinload(Flag.reviewer)])
            if stored is None:
                raise
            return flag_dict(stored)
        out = flag_dict(flag)
        if created and open_case is not None:
            log.info("flag %s attached to open case %s (camera %s, %s)", flag.id, open_case.id, flag.camera_id, flag.rule)
            if timeline_grew:
                await self.emit([(Topic.CASE_CHANGED, case_dict(open_case, timeline=False))])
        elif created:
            log.info("flag %s recorded (camera %s, %s)", flag.id, flag.camera_id, flag.rule)
            await self.emit([(Topic.FLAG_CREATED, out)])
        return out

    async def list_flags(self, viewer: Viewer, status: str | None = None) -> list[dict[str, Any]]:
        """Flags in the viewer's region, newest first; `status` filters."""
        require_role(viewer, *FLAG_READERS)
        if status is not None and status not in FLAG_STATUSES:
            raise Invalid("status", f"one of {', '.join(FLAG_STATUSES)}")
        query = select(Flag).where(region_filter(Flag.region, viewer)).options(selectinload(Flag.reviewer))
        if status is not None:
            query = query.where(Flag.status == status)
        async with self.read_session() as session:
            flags = await session.scalars(query.order_by(Flag.raised_at.desc(), Flag.id))
            return [flag_dict(f) for f in flags]

    async def get_flag(self, viewer: Viewer, flag_id: str) -> dict[str, Any]:
        """One flag; NotFound outside the viewer's region."""
        require_role(viewer, *FLAG_READERS)
        async with self.read_session() as session:
            return flag_dict(await self._flag(session, viewer, flag_id))

    async def flag_evidence_path(self, viewer: Viewer, flag_id: str) -> Path:
        """The evidence JPEG of a flag on disk; NotFound if the flag or the file is missing."""
        require_role(viewer, *FLAG_READERS)
        async with self.read_session() as session:
            flag = await self._flag(session, viewer, flag_id)
        path = files.resolve(self.data_dir, flag.evidence_path)
        if path is None or not await asyncio.to_thread(path.is_file):
            raise NotFound(f"the evidence picture of flag {flag_id} is missing")
        return path

    async def confirm_flag(
        self, viewer: Viewer, flag_id: str, category: str | None = None, note: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Duty confirms a pending flag: one transaction files a case (source video_ai), attaches the
        evidence and writes the "file" entry. AlreadyReviewed if the flag is not pending."""
        require_role(viewer, "duty")
        # look the flag up first so the evidence is hashed outside the transaction
        async with self.read_session() as session:
            probe = await self._flag(session, viewer, flag_id)
        if probe.status != PENDING:
            raise AlreadyReviewed(f"flag {flag_id} is {probe.status} already")
        cat = get_category(category) if category else category_for_rule(probe.rule)
        evidence = files.resolve(self.data_dir, probe.evidence_path)
        digest = await asyncio.to_thread(files.file_sha256, evidence) if evidence is not None else None
        if digest is None:
            log.warning("flag %s: evidence file missing, the case is filed without it", flag_id)

        now = self.now()
        async with self.write_session() as session, session.begin():
            flag = await self._flag(session, viewer, flag_id)
            actor = await self._actor(session, viewer)
            # conditional: of two reviewers racing, only one moves the flag out of pending
            result = await session.execute(
                update(Flag)
                .where(Flag.id == flag_id, Flag.status == PENDING)
                .values(status=CONFIRMED, reviewed_by=actor.id, reviewed_at=now)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise AlreadyReviewed(f"flag {flag_id} was reviewed already")
            location = f"{flag.camera_name} / {flag.zone_name}"
            case = Case(
                title=f"{cat.name_zh} {cat.name_en} · {location}"[:256],
                status=workflow.next_status(workflow.NEW, workflow.FILE),
                source="video_ai",
                category=cat.code,
                camera_id=flag.camera_id,
                zone_id=flag.zone_id,
                flag_id=flag.id,
                region=flag.region,
                location=location[:512],
                team_id=None,
                deadline_at=None,
                created_at=now,
                updated_at=now,
            )
            case.team = None
            case.events, case.tasks, case.attachments = [], [], []
            case.clock, case.extensions = None, []
            session.add(case)
            await session.flush()
            await self.on_case_filed(session, case, now)
            if digest is not None:
                case.attachments.append(
                    Attachment(
                        kind="evidence",
                        path=flag.evidence_path,
                        sha256=digest[0],
                        size=digest[1],
                        content_type="image/jpeg",
                        created_at=now,
                        created_by=actor.id,
                    )
                )
            # the clip, if media finished it before this review (later ones are attached on arrival)
            await session.refresh(flag, ["clip_state", "clip_path", "clip_sha256", "clip_size"])
            if flag.clip_state == "ready" and flag.clip_path:
                case.attachments.append(
                    Attachment(
                        kind="clip",
                        path=flag.clip_path,
                        sha256=flag.clip_sha256 or "",
                        size=flag.clip_size or 0,
                        content_type="video/mp4",
                        created_at=now,
                        created_by=actor.id,
                    )
                )
            append_event(
                case,
                actor=actor,
                action=workflow.FILE,
                from_status=workflow.NEW,
                to_status=case.status,
                at=now,
                note=note,
                data={"flag_id": flag.id, "category": cat.code, "source": "video_ai"},
            )
            flag.case_id = case.id
            flag.reviewer = actor
        flag_out, case_out = flag_dict(flag), case_dict(case)
        log.info("flag %s confirmed as case %s by user %s", flag_id, case.id, actor.id)
        await self.emit(
            [(Topic.FLAG_REVIEWED, flag_out), (Topic.CASE_CHANGED, case_dict(case, timeline=False))]
        )
        return flag_out, case_out

    async def dismiss_flag(self, viewer: Viewer, flag_id: str, reason: str) -> dict[str, Any]:
        """Duty dismisses a pending flag, saying why. AlreadyReviewed if it is not pending."""
        require_role(viewer, "duty")
        reason = (reason or "").strip()
        if not reason:
            raise Invalid("reason", "say why the flag is dismissed")
        async with self.write_session() as session, session.begin():
            flag = await self._flag(session, viewer, flag_id)
            actor = await self._actor(session, viewer)
            result = await session.execute(
                update(Flag)
                .where(Flag.id == flag_id, Flag.status == PENDING)
                .values(status=DISMISSED, reviewed_by=actor.id, reviewed_at=self.now(), dismiss_reason=reason[:2000])
            )
            if getattr(result, "rowcount", 0) != 1:
                raise AlreadyReviewed(f"flag {flag_id} was reviewed already")
            flag.reviewer = actor
        out = flag_dict(flag)
        await self.emit([(Topic.FLAG_REVIEWED, out)])
        return out
