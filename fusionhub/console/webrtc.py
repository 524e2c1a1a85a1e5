"""WHEP: standard WebRTC viewing endpoints, so browsers, OBS, GStreamer and other hubs interoperate."""

from __future__ import annotations

from aiohttp import web

from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import int_param, user_of
from fusionhub.console.keys import DISPATCH, MEDIA, WHEP_OWNERS

routes = web.RouteTableDef()

MAX_SDP_BYTES = 64 * 1024


@routes.post("/whep/cameras/{camera_id}")
async def whep_view(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin", "commander", "duty"])
    camera_id = int_param(request, "camera_id")
    await request.app[DISPATCH].get_camera(user, camera_id)  # 404 outside the user's region
    if request.content_type != "application/sdp":
        raise ApiError(415, "unsupported_media_type", "send the SDP offer as application/sdp")
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise ApiError(413, "too_large", "the SDP offer is too large")
    offer = await request.text()
    if "v=0" not in offer or "m=video" not in offer:
        raise ApiError(400, "invalid_sdp", "the body is not an SDP offer with a video section")
    answer, session_id = await request.app[MEDIA].whep_offer(camera_id, offer)
    owners: dict[str, int] = request.app[WHEP_OWNERS]
    owners[session_id] = int(user["id"])
    location = f"/whep/sessions/{session_id}"
    return web.Response(
        status=201,
        body=answer.encode(),
        content_type="application/sdp",
        headers={"Location": location},
    )


@routes.delete("/whep/sessions/{session_id}")
async def whep_end(request: web.Request) -> web.Response:
    user = user_of(request)
    session_id = request.match_info["session_id"]
    owners: dict[str, int] = request.app[WHEP_OWNERS]
    owner = owners.get(session_id)
    if owner is None or (owner != int(user["id"]) and user["role"] != "admin"):
        raise ApiError(404, "not_found", "no such viewing session")
    await request.app[MEDIA].whep_delete(session_id)
    owners.pop(session_id, None)
    return web.Response(status=200)
