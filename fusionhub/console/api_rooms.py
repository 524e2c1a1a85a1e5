"""Push-to-talk rooms: list and form them, join one over WebRTC, operator override, recorded bursts."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from fusionhub.console.auth import User, require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import json_reply, read_body, user_of
from fusionhub.console.keys import CONFIG, DISPATCH, INTERCOM
from fusionhub.media.intercom import Participant

routes = web.RouteTableDef()

MAX_SDP_BYTES = 64 * 1024
ROOM_ROLES = ["commander", "duty", "field"]


class CaseRoomBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: int = Field(ge=1)
    team_ids: list[int] | None = Field(None, max_length=50, description="nearby teams to add")


def _live(request: web.Request, room: dict[str, Any]) -> dict[str, Any]:
    return {**room, **request.app[INTERCOM].room_state(room["id"])}


async def _room(request: web.Request, user: User) -> dict[str, Any]:
    room: dict[str, Any] = await request.app[DISPATCH].get_room(user, request.match_info["room_id"])
    return room


@routes.get("/api/v1/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ROOM_ROLES)
    rooms = await request.app[DISPATCH].list_rooms(user)
    return json_reply([_live(request, r) for r in rooms])


@routes.post("/api/v1/rooms")
async def open_case_room(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["commander"])
    body = await read_body(request, CaseRoomBody)
    room = await request.app[DISPATCH].open_case_room(user, body.case_id, body.team_ids)
    return json_reply(_live(request, room), status=201)


@routes.get("/api/v1/rooms/{room_id}")
async def get_room(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_reply(_live(request, await _room(request, user)))


@routes.post("/api/v1/rooms/{room_id}/join")
async def join_room(request: web.Request) -> web.Response:
    user = user_of(request)
    room = await _room(request, user)
    if request.content_type != "application/sdp":
        raise ApiError(415, "unsupported_media_type", "send the SDP offer as application/sdp")
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise ApiError(413, "too_large", "the SDP offer is too large")
    offer = await request.text()
    if "v=0" not in offer or "m=audio" not in offer:
        raise ApiError(400, "invalid_sdp", "the body is not an SDP offer with an audio section")
    participant = Participant(
        user_id=int(user["id"]),
        name=str(user.get("display_name") or user["username"]),
        role=str(user["role"]),
        priority=request.app[CONFIG].intercom.priority_of(str(user["role"])),
    )
    answer, session_id = await request.app[INTERCOM].join(room["id"], participant, offer, case_id=room["case_id"])
    return web.Response(
        status=201,
        body=answer.encode(),
        content_type="application/sdp",
        headers={"Location": f"/api/v1/rooms/{room['id']}/sessions/{session_id}", "X-Session-Id": session_id},
    )


@routes.delete("/api/v1/rooms/{room_id}/sessions/{session_id}")
async def leave_room(request: web.Request) -> web.Response:
    user = user_of(request)
    intercom = request.app[INTERCOM]
    try:
        session = intercom.session(request.match_info["session_id"])
    except LookupError:
        raise ApiError(404, "not_found", "no such intercom session") from None
    if session.room_id != request.match_info["room_id"] or session.participant.user_id != int(user["id"]):
        raise ApiError(404, "not_found", "no such intercom session")
    await session.close()
    return web.Response(status=204)


@routes.post("/api/v1/rooms/{room_id}/revoke")
async def revoke_floor(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["commander"])
    room = await _room(request, user)
    request.app[INTERCOM].revoke(room["id"])
    return json_reply(_live(request, room))


@routes.get("/api/v1/rooms/{room_id}/bursts")
async def list_bursts(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise ApiError(422, "invalid_input", "limit: a whole number") from None
    return json_reply(await request.app[DISPATCH].list_bursts(user, request.match_info["room_id"], limit))


@routes.get("/api/v1/bursts/{burst_id}/audio")
async def burst_audio(request: web.Request) -> web.FileResponse:
    user = user_of(request)
    path = await request.app[DISPATCH].burst_file(user, request.match_info["burst_id"])
    return web.FileResponse(path, headers={"Content-Type": "audio/ogg", "Cache-Control": "private, max-age=3600"})
