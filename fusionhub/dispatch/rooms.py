"""Push-to-talk rooms on record: who may join which, rooms formed from cases, recorded bursts.

Three kinds of room, each with a stable id:
- `team:<id>`: a field team, its members and the staff whose region covers the team;
- `region:<path>`: everyone whose region is that region or below it, and staff above it;
- `case:<id>`: formed by a commander from a case, with the teams dispatched to it and any
  teams added ("nearby"; with no task and none named, the teams of the case's region).
Team and region rooms need no record; case rooms are rows of `intercom_rooms`. The live state
(who is connected, who talks) belongs to media; dispatch keeps only what must survive.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.cases import CaseService, _case_options
from fusionhub.dispatch.errors import Forbidden, Invalid, NotFound
from fusionhub.dispatch.models import Case, IntercomRoomRecord, PttBurstRecord, Team, User, to_datetime, to_epoch
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.views import case_dict
from fusionhub.signaling.messages import PttBurst, Topic

log = logging.getLogger(__name__)

ROOM_ROLES = ("commander", "duty", "field")
STAFF = ("commander", "duty")
BURST_ACTION = "ptt_burst"
MAX_ROOM_TEAMS = 50


def _inside(viewer: Viewer, region: str) -> bool:
    """The viewer's own region is `region` or below it (a member of that region's room)."""
    mine = str(viewer["region"])
    return mine == region or mine.startswith(region + ".")


def _room(kind: str, key: str, name: str, region: str, team_ids: list[int], case_id: int | None) -> dict[str, Any]:
    return {"id": f"{kind}:{key}", "kind": kind, "name": name, "region": region, "team_ids": team_ids, "case_id": case_id}


def burst_dict(burst: PttBurstRecord) -> dict[str, Any]:
    """A recorded burst as the API shows it; `url` serves the Ogg Opus file."""
    return {
        "id": burst.id,
        "room_id": burst.room_id,
        "case_id": burst.case_id,
        "speaker_id": burst.speaker_id,
        "speaker_name": burst.speaker_name,
        "started_at": to_epoch(burst.started_at),
        "ended_at": to_epoch(burst.ended_at),
        "end_reason": burst.end_reason,
        "duration_s": burst.duration_s,
        "sha256": burst.sha256,
        "size": burst.size,
        "url": f"/api/v1/bursts/{burst.id}/audio",
    }


class RoomService(CaseService):
    """Room definitions, access to them, case rooms and the recorded bursts."""

    # -- which rooms ----------------------------------------------------------------------------------

    async def list_rooms(self, viewer: Viewer) -> list[dict[str, Any]]:
        """The rooms the viewer may join: its team(s), its region(s), its cases' rooms."""
        require_role(viewer, *ROOM_ROLES)
        field = viewer["role"] == "field"
        async with self.read_session() as session:
            if field:
                team_id = viewer.get("team_id")
                teams = [t for t in [await session.get(Team, team_id)] if t is not None] if team_id is not None else []
            else:
                teams = list(await session.scalars(select(Team).where(region_filter(Team.region, viewer)).order_by(Team.id)))
            case_rooms = list(await session.scalars(select(IntercomRoomRecord).order_by(IntercomRoomRecord.created_at.desc())))
            visible_cases = await self._visible_case_rooms(session, viewer, case_rooms)
        rooms = [_room("team", str(t.id), t.name, t.region, [t.id], None) for t in teams]
        regions = {str(viewer["region"])} if field else {str(viewer["region"]), *(t.region for t in teams)}
        rooms += [_room("region", r, r, r, [], None) for r in sorted(regions)]
        rooms += [self._case_room(r) for r in visible_cases]
        return rooms

    async def _visible_case_rooms(
        self, session: AsyncSession, viewer: Viewer, rooms: list[IntercomRoomRecord]
    ) -> list[IntercomRoomRecord]:
        if viewer["role"] == "field":
            team_id = viewer.get("team_id")
            return [r for r in rooms if team_id is not None and team_id in r.team_ids]
        return [r for r in rooms if region_visible(viewer, r.region)]

    @staticmethod
    def _case_room(record: IntercomRoomRecord) -> dict[str, Any]:
        return _room("case", str(record.case_id), record.name, record.region, list(record.team_ids), record.case_id)

    async def get_room(self, viewer: Viewer, room_id: str) -> dict[str, Any]:
        """One room the viewer may join; NotFound otherwise (existence is not leaked)."""
        require_role(viewer, *ROOM_ROLES)
        kind, _, key = room_id.partition(":")
        async with self.read_session() as session:
            if kind == "team" and key.isdigit():
                team = await session.get(Team, int(key))
                if team is not None and (
                    viewer.get("team_id") == team.id
                    if viewer["role"] == "field"
                    else region_visible(viewer, team.region)
                ):
                    return _room("team", key, team.name, team.region, [team.id], None)
            elif kind == "region" and key and len(key) <= 128:
                if _inside(viewer, key) or (viewer["role"] != "field" and region_visible(viewer, key)):
                    return _room("region", key, key, key, [], None)
            elif kind == "case" and key.isdigit():
                record = await session.get(IntercomRoomRecord, room_id)
                if record is not None and await self._visible_case_rooms(session, viewer, [record]):
                    return self._case_room(record)
        raise NotFound(f"no room {room_id!r} for you")

    async def open_case_room(self, viewer: Viewer, case_id: int, team_ids: list[int] | None = None) -> dict[str, Any]:
        """A commander forms (or widens) the room of a case: its dispatched teams plus `team_ids`.

        With no task yet and no team named, the room takes the teams of the case's region.
        Returns the room; Invalid for a team outside the commander's region.
        """
        require_role(viewer, "commander")
        extra = list(dict.fromkeys(team_ids or []))
        if len(extra) > MAX_ROOM_TEAMS:
            raise Invalid("team_ids", f"at most {MAX_ROOM_TEAMS} teams")
        room_id = f"case:{case_id}"
        for _ in range(2):  # a concurrent first creation: read the winner's row and widen it
            try:
                async with self.write_session() as session, session.begin():
                    case = await self._case(session, viewer, case_id, timeline=False)
                    for team_id in extra:
                        team = await session.get(Team, team_id)
                        if team is None or not region_visible(viewer, team.region):
                            raise Invalid("team_ids", f"no team {team_id} in your region")
                    members = [t.team_id for t in case.tasks] + extra
                    if not members:
                        nearby = await session.scalars(select(Team.id).where(region_filter(Team.region, {"region": case.region})))
                        members = list(nearby)
                    record = await session.get(IntercomRoomRecord, room_id)
                    if record is None:
                        record = IntercomRoomRecord(
                            id=room_id,
                            case_id=case.id,
                            name=case.title[:256],
                            region=case.region,
                            team_ids=list(dict.fromkeys(members)),
                            created_by=int(viewer["id"]),
                            created_at=self.now(),
                        )
                        session.add(record)
                    else:
                        record.team_ids = list(dict.fromkeys([*record.team_ids, *members]))
                return self._case_room(record)
            except IntegrityError:
                continue
        raise Invalid("case_id", f"the room of case {case_id} could not be formed; try again")

    # -- recorded bursts ------------------------------------------------------------------------------

    async def record_ptt_burst(self, msg: PttBurst) -> bool:
        """Store a burst once (a redelivered event changes nothing); a case room's burst joins the
        case timeline as a `ptt_burst` entry. Returns False when it was stored already.

        Invalid (a ValueError) when the file path leaves the data directory.
        """
        if not files.is_safe_relative(msg.path):
            raise Invalid("path", "must be a path inside the data directory")
        for attempt in range(3):
            try:
                return await self._store_burst(msg)
            except (IntegrityError, StaleDataError):
                # another timeline append took the same seq at the same moment: read again, retry
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return False

    async def _store_burst(self, msg: PttBurst) -> bool:
        case: Case | None = None
        async with self.write_session() as session, session.begin():
            if await session.get(PttBurstRecord, msg.burst_id) is not None:
                return False
            speaker = await session.get(User, msg.speaker_id)
            case = await session.get(Case, msg.case_id, options=_case_options()) if msg.case_id is not None else None
            record = PttBurstRecord(
                id=msg.burst_id,
                room_id=msg.room_id,
                case_id=case.id if case is not None else None,
                speaker_id=speaker.id if speaker is not None else None,
                speaker_name=msg.speaker_name,
                started_at=to_datetime(msg.started_at),
                ended_at=to_datetime(msg.ended_at),
                end_reason=msg.end_reason,
                duration_s=msg.duration_s,
                packets=msg.packets,
                path=msg.path,
                sha256=msg.sha256,
                size=msg.size,
                recorded_at=self.now(),
            )
            session.add(record)
            if case is not None:
                append_event(
                    case,
                    actor=speaker,
                    action=BURST_ACTION,
                    from_status=case.status,
                    to_status=case.status,
                    at=to_datetime(msg.ended_at),
                    data={**burst_dict(record), "started_at": msg.started_at, "ended_at": msg.ended_at},
                )
        if case is not None:
            await self.emit([(Topic.CASE_CHANGED, case_dict(case, timeline=False))])
        log.debug("burst %s of %s in %s stored", msg.burst_id, msg.speaker_name, msg.room_id)
        return True

    async def list_bursts(self, viewer: Viewer, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A room's latest bursts, newest first (the viewer must be allowed in the room)."""
        await self.get_room(viewer, room_id)
        if not 1 <= limit <= 500:
            raise Invalid("limit", "1 to 500")
        async with self.read_session() as session:
            rows = await session.scalars(
                select(PttBurstRecord)
                .where(PttBurstRecord.room_id == room_id)
                .order_by(PttBurstRecord.started_at.desc())
                .limit(limit)
            )
            return [burst_dict(b) for b in rows]

    async def burst_file(self, viewer: Viewer, burst_id: str) -> Path:
        """The Ogg Opus file of a burst the viewer may hear (its room's members, its case's viewers)."""
        async with self.read_session() as session:
            burst = await session.get(PttBurstRecord, burst_id)
            if burst is None:
                raise NotFound(f"no burst {burst_id}")
            allowed = False
            if burst.case_id is not None:
                case = await session.get(Case, burst.case_id, options=[selectinload(Case.tasks)])
                allowed = self._visible(viewer, case)
        if not allowed:
            try:
                await self.get_room(viewer, burst.room_id)
            except (NotFound, Forbidden):
                raise NotFound(f"no burst {burst_id}") from None
        path = files.resolve(self.data_dir, burst.path)
        if path is None or not await asyncio.to_thread(path.is_file):
            raise NotFound(f"the recording of burst {burst_id} is missing")
        return path
