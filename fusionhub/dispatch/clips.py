"""Flag clips: the media gateway's MP4 of each flag, kept on the flag and carried to its case.

The record always stays: a clip that could not be written, or that retention deleted, is marked
`missing` with a reason; the flag, its case and the case's clip attachment row remain.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer, region_visible, require_role
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Invalid, NotFound
from fusionhub.dispatch.models import Attachment, Flag, to_datetime
from fusionhub.dispatch.views import flag_dict
from fusionhub.signaling.messages import ClipMissing, ClipReady, Topic

log = logging.getLogger(__name__)

READY, MISSING = "ready", "missing"
CLIP_KIND = "clip"
CLIP_TYPE = "video/mp4"
_CLIP_READERS = ("admin", "commander", "duty")


class FlagNotStored(NotFound):
    """The clip's flag is not (yet) on record: the clip event arrived before the flag event."""


class ClipService(ServiceCore):
    """Stores clip results from the media gateway; serves a flag's clip file."""

    async def record_clip(self, msg: ClipReady) -> dict[str, Any]:
        """Attach a written clip to its flag, and to the flag's case if it was confirmed already.

        Idempotent. FlagNotStored when the flag is not on record yet (the caller retries);
        Invalid (a ValueError) when the path leaves the data directory.
        """
        if not files.is_safe_relative(msg.path) or not msg.path.startswith("clips/"):
            raise Invalid("path", "a clip must be under clips/ in the data directory")
        now = self.now()
        async with self.write_session() as session, session.begin():
            flag = await session.scalar(
                select(Flag).where(Flag.id == msg.flag_id).options(selectinload(Flag.reviewer)).with_for_update()
            )
            if flag is None:
                raise FlagNotStored(f"no flag {msg.flag_id} yet")
            if flag.clip_state == READY and flag.clip_path == msg.path:
                return flag_dict(flag)
            flag.clip_state, flag.clip_path, flag.clip_reason = READY, msg.path, None
            flag.clip_start_at, flag.clip_end_at = to_datetime(msg.start), to_datetime(msg.end)
            flag.clip_size, flag.clip_sha256 = msg.size, msg.sha256
            if flag.case_id is not None:
                # confirmed before the clip was done: the case gets it now
                known = await session.scalar(
                    select(Attachment.id).where(Attachment.case_id == flag.case_id, Attachment.path == msg.path)
                )
                if known is None:
                    session.add(
                        Attachment(
                            case_id=flag.case_id,
                            kind=CLIP_KIND,
                            path=msg.path,
                            sha256=msg.sha256,
                            size=msg.size,
                            content_type=CLIP_TYPE,
                            created_at=now,
                            created_by=None,
                        )
                    )
        out = flag_dict(flag)
        log.info("flag %s: clip recorded (%.1f s)", flag.id, msg.end - msg.start)
        await self.emit([(Topic.FLAG_CLIP, out)])
        return out

    async def mark_clip_missing(self, msg: ClipMissing) -> list[dict[str, Any]]:
        """Mark the clip of a flag (by id) or of whichever flag holds `path` as missing, with the reason.

        The flag and any case attachment stay; returns the flags changed (none: nothing matched).
        """
        if msg.flag_id is None and msg.path is None:
            raise Invalid("flag_id", "say which clip: a flag id or a path")
        query = select(Flag).options(selectinload(Flag.reviewer)).with_for_update()
        query = query.where(Flag.id == msg.flag_id) if msg.flag_id is not None else query.where(Flag.clip_path == msg.path)
        async with self.write_session() as session, session.begin():
            flags = list(await session.scalars(query))
            for flag in flags:
                if msg.flag_id is not None and flag.clip_state == READY and msg.reason != "retention":
                    continue  # a late failure report for a clip that was written after all
                flag.clip_state, flag.clip_reason = MISSING, msg.reason
        out = [flag_dict(f) for f in flags]
        for item in out:
            log.info("flag %s: clip missing (%s)", item["id"], msg.reason)
        await self.emit([(Topic.FLAG_CLIP, f) for f in out])
        return out

    async def flag_clip_path(self, viewer: Viewer, flag_id: str) -> Path:
        """The clip MP4 of a flag on disk; NotFound if there is none (the reason is in the flag)."""
        require_role(viewer, *_CLIP_READERS)
        async with self.read_session() as session:
            flag = await session.get(Flag, flag_id)
        if flag is None or not region_visible(viewer, flag.region):
            raise NotFound(f"no flag {flag_id}")
        if flag.clip_state != READY or flag.clip_path is None:
            why = f" ({flag.clip_reason})" if flag.clip_reason else ""
            raise NotFound(f"flag {flag_id} has no clip{why}")
        path = files.resolve(self.data_dir, flag.clip_path)
        if path is None or not await asyncio.to_thread(path.is_file):
            raise NotFound(f"the clip of flag {flag_id} is missing")
        return path
