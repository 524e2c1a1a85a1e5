"""Intake besides video flags: manual entry, hotline calls and field patrol reports; then the
centre files the case (立案, its dispatch clock starts) or refuses to file it (不予立案, with reason)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from fusionhub.dispatch import clock, files, workflow
from fusionhub.dispatch.access import Viewer, region_visible, require_role
from fusionhub.dispatch.cases import CaseService, _note, photo_attachment, photo_data
from fusionhub.dispatch.errors import Forbidden, Invalid, NotFound
from fusionhub.dispatch.models import Case, Task, User
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.unit import Unit
from fusionhub.dispatch.views import case_dict
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

SOURCES = ("manual", "hotline", "patrol")
FILERS = ("duty", "commander")


def _text(field: str, value: str | None, limit: int, *, required: bool) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise Invalid(field, "must not be empty")
    if len(text) > limit:
        raise Invalid(field, f"at most {limit} characters")
    return text or None


class IntakeService(CaseService):
    """New cases from people, and the filing decision."""

    async def create_case(
        self,
        viewer: Viewer,
        *,
        source: str,
        category: str,
        location: str,
        description: str | None = None,
        title: str | None = None,
        region: str | None = None,
        contact: str | None = None,
        photo: bytes | None = None,
        photo_type: str | None = None,
    ) -> dict[str, Any]:
        """A reported case (status `reported`): duty and commanders enter any source; field members
        report from patrol. Region defaults to the reporter's and must lie in it."""
        require_role(viewer, "duty", "commander", "field")
        if source not in SOURCES:
            raise Invalid("source", f"one of {', '.join(SOURCES)}")
        if viewer["role"] == "field" and source != "patrol":
            raise Forbidden("field members report cases from patrol (source patrol)")
        cat = self.catalog.current.get(category)
        place = _text("location", location, 512, required=True)
        assert place is not None
        text = _text("description", description, 4000, required=False)
        who = _text("contact", contact, 128, required=False)
        where = _text("region", region, 128, required=False) or str(viewer["region"])
        if not region_visible(viewer, where):
            raise Invalid("region", f"{where!r} is not in your region")
        heading = _text("title", title, 256, required=False) or f"{cat.name_zh} {cat.name_en} · {place}"[:256]
        stored: tuple[str, str] | None = None
        if photo is not None:
            suffix = files.check_photo(photo, photo_type)
            stored = await asyncio.to_thread(files.store_photo, self.data_dir, photo, suffix)
        try:
            async with self.write_session() as session, session.begin():
                actor = await session.get(User, int(viewer["id"]))
                if actor is None:
                    raise NotFound(f"no user {viewer['id']}")
                now = self.now()
                case = Case(
                    title=heading,
                    status=workflow.next_status(workflow.NEW, workflow.INTAKE),
                    source=source,
                    category=cat.code,
                    region=where,
                    location=place,
                    description=text,
                    contact=who,
                    reported_by=actor.id,
                    created_at=now,
                    updated_at=now,
                )
                case.team = None
                case.events, case.tasks, case.attachments, case.extensions = [], [], [], []
                case.clock = None
                session.add(case)
                await session.flush()
                data: dict[str, Any] = {"source": source, "category": cat.code, "region": where}
                if stored is not None and photo is not None and photo_type is not None:
                    att = photo_attachment(stored, len(photo), photo_type, actor, now)
                    case.attachments.append(att)
                    await session.flush()
                    data.update(photo_data(att))
                append_event(
                    case, actor=actor, action=workflow.INTAKE, from_status=workflow.NEW, to_status=case.status,
                    at=now, note=text, data=data,
                )
        except Exception:
            if stored is not None:
                await asyncio.to_thread(files.remove_quietly, self.data_dir, stored[0])
            raise
        log.info("case %s reported (%s, %s) by user %s", case.id, source, cat.code, actor.id)
        await self.emit([(Topic.CASE_CHANGED, case_dict(case, timeline=False))])
        return case_dict(case)

    async def file_case(
        self, viewer: Viewer, case_id: int, category: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Duty or a commander files a reported case (optionally correcting its category): the
        dispatch stage's clock starts."""
        require_role(viewer, *FILERS)
        text = _note(note, required=False)
        new_category = self.catalog.current.get(category).code if category else None

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], None]:
            data: dict[str, Any] = {}
            if new_category is not None and new_category != case.category:
                data.update(category=new_category, previous_category=case.category)
                case.category = new_category
            armed = self._arm(await unit.calendar(), case, clock.STAGE_DISPATCH, now)
            data["dispatch_due_at"] = armed.due_at.timestamp()
            return data, None

        return await self._transition(viewer, case_id, workflow.FILE, text, step)

    async def refuse_case(self, viewer: Viewer, case_id: int, reason: str) -> dict[str, Any]:
        """Duty or a commander refuses to file a reported case (not the centre's business, a
        duplicate, no problem found), saying why. Final."""
        require_role(viewer, *FILERS)
        text = _note(reason, required=True)

        async def step(unit: Unit, case: Case, actor: User, now: datetime) -> tuple[dict[str, Any], Task | None]:
            clock.stop(case.clock)
            return {}, None

        return await self._transition(viewer, case_id, workflow.REFUSE, text, step)
