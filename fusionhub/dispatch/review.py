"""What analytics learns from review, and what keeps it from storming: flags that attach to an open
case of their zone, per-rule precision from duty officers' decisions, reviewed samples for training.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from fusionhub.dispatch import workflow
from fusionhub.dispatch.access import Viewer, region_filter, require_role
from fusionhub.dispatch.cases import _case_options
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Invalid
from fusionhub.dispatch.models import Case, Flag, to_datetime, to_epoch
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.views import case_dict
from fusionhub.signaling.messages import FlagRaised, Topic, ZoneSighting

log = logging.getLogger(__name__)

ATTACHED = "attached"  # a flag of a zone whose case is still open: it joins that case, no review
STILL_PRESENT = "still_present"  # the timeline entry an attached flag writes
REVIEWED = ("confirmed", "dismissed")
PRECISION_READERS = ("admin", "commander", "duty")
MAX_SAMPLES = 100_000


class ReviewService(ServiceCore):
    """Open-case attachment of flags, precision from reviews, and training samples."""

    # at most one "still present" entry per case in this many seconds (the flags attach regardless)
    still_present_every_s: float = 600.0

    async def open_case_of_zone(self, session: AsyncSession, camera_id: int, zone_id: int | None) -> Case | None:
        """The newest unfinished case filed from this camera and zone, with its timeline loaded."""
        if zone_id is None:
            return None
        return (
            await session.scalars(
                select(Case)
                .where(
                    Case.camera_id == camera_id,
                    Case.zone_id == zone_id,
                    Case.status.not_in(workflow.FINISHED),
                )
                .options(*_case_options(timeline=True))
                .order_by(Case.created_at.desc(), Case.id.desc())
                .limit(1)
            )
        ).first()

    def attach_flag(self, case: Case, flag: Flag, msg: FlagRaised) -> bool:
        """Join a new flag to an open case of its zone; True when the case's timeline got a
        "still present" entry (at most one per `still_present_every_s`)."""
        flag.status = ATTACHED
        flag.case_id = case.id
        return self._still_present(
            case,
            {
                "flag_id": msg.flag_id,
                "label": msg.label,
                "confidence": round(msg.confidence, 4),
                "seen_at": msg.raised_at,
                "first_seen_at": msg.first_seen_at,
            },
        )

    def _still_present(self, case: Case, data: dict[str, Any]) -> bool:
        """A "still present" entry on the case, unless one was written in the last
        `still_present_every_s` (or this very sighting is on it already: a redelivered event)."""
        now = self.now()
        notes = [e for e in case.events if e.action == STILL_PRESENT]
        if any(e.data.get("seen_at") == data["seen_at"] for e in notes):
            return False
        if notes and now - notes[-1].at < timedelta(seconds=self.still_present_every_s):
            return False
        append_event(case, actor=None, action=STILL_PRESENT, from_status=case.status, to_status=case.status, at=now, data=data)
        case.updated_at = now  # bumps the version: a concurrent change of the case retries
        return True

    async def record_sighting(self, msg: ZoneSighting) -> bool:
        """A flagged stay goes on (analytics raised no new flag for it): "still present" on the zone's
        open case. Nothing when no case is open there (the flag may still wait for review, or was
        dismissed). Returns whether the case's timeline grew."""
        for attempt in range(3):
            try:
                case = await self._note_sighting(msg)
            except (IntegrityError, StaleDataError):  # the case moved on meanwhile: read it again
                if attempt == 2:
                    raise
                continue
            if case is None:
                return False
            log.info("case %s: %s still present (camera %s, zone %s)", case.id, msg.label, msg.camera_id, msg.zone_id)
            await self.emit([(Topic.CASE_CHANGED, case_dict(case, timeline=False))])
            return True
        return False

    async def _note_sighting(self, msg: ZoneSighting) -> Case | None:
        async with self.write_session() as session, session.begin():
            case = await self.open_case_of_zone(session, msg.camera_id, msg.zone_id)
            data = {
                "label": msg.label,
                "confidence": round(msg.confidence, 4),
                "seen_at": msg.seen_at,
                "first_seen_at": msg.first_seen_at,
            }
            if case is None or not self._still_present(case, data):
                return None
        return case

    async def rule_precision(
        self, viewer: Viewer, *, since: float | None = None, camera_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Per rule, in the viewer's region: flags by status and precision = confirmed / (confirmed +
        dismissed), None before any review. `since` filters on when the flag was raised."""
        require_role(viewer, *PRECISION_READERS)
        query = select(Flag.rule, Flag.status, func.count()).where(region_filter(Flag.region, viewer))
        if since is not None:
            query = query.where(Flag.raised_at >= _since(since))
        if camera_id is not None:
            query = query.where(Flag.camera_id == camera_id)
        async with self.read_session() as session:
            rows = (await session.execute(query.group_by(Flag.rule, Flag.status))).all()
        by_rule: dict[str, dict[str, int]] = {}
        for rule, status, count in rows:
            by_rule.setdefault(rule, {})[status] = int(count)
        out = []
        for rule in sorted(by_rule):
            counts = by_rule[rule]
            confirmed, dismissed = counts.get("confirmed", 0), counts.get("dismissed", 0)
            out.append(
                {
                    "rule": rule,
                    "confirmed": confirmed,
                    "dismissed": dismissed,
                    "pending": counts.get("pending", 0),
                    "attached": counts.get(ATTACHED, 0),
                    "reviewed": confirmed + dismissed,
                    "precision": confirmed / (confirmed + dismissed) if confirmed + dismissed else None,
                }
            )
        return out

    async def review_samples(self, *, since: float | None = None, camera_id: int | None = None) -> list[dict[str, Any]]:
        """Reviewed flags with a clean frame, oldest first, for training (the CLI, not the API)."""
        query = select(Flag).where(Flag.status.in_(REVIEWED), Flag.frame_path.is_not(None))
        if since is not None:
            query = query.where(Flag.raised_at >= _since(since))
        if camera_id is not None:
            query = query.where(Flag.camera_id == camera_id)
        async with self.read_session() as session:
            flags = await session.scalars(query.order_by(Flag.raised_at, Flag.id).limit(MAX_SAMPLES))
            return [
                {
                    "id": f.id,
                    "rule": f.rule,
                    "status": f.status,
                    "label": f.label,
                    "camera_id": f.camera_id,
                    "zone_id": f.zone_id,
                    "boxes": f.boxes,
                    "frame_width": f.frame_width,
                    "frame_height": f.frame_height,
                    "frame_path": f.frame_path,
                    "raised_at": to_epoch(f.raised_at),
                    "reviewed_at": to_epoch(f.reviewed_at),
                    "dismiss_reason": f.dismiss_reason,
                }
                for f in flags
            ]


def _since(epoch: float) -> datetime:
    try:
        return to_datetime(epoch)
    except (OverflowError, OSError, ValueError) as exc:
        raise Invalid("since", "not a usable time") from exc
