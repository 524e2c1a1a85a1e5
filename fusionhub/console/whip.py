"""WHIP: field phones and WebRTC terminals publish camera + microphone; staff watch them over WHEP.

POST /whip/{name} (application/sdp offer) → 201 with the answer and a Location to DELETE;
POST /whep/publishers/{name} views a live publisher like a camera (its session ends with the
usual DELETE /whep/sessions/{id}); GET /api/v1/publishers lists the live ones in the user's region.
"""

from __future__ import annotations

from aiohttp import web

from fusionhub.console.auth import region_visible, require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import json_reply, user_of
from fusionhub.console.keys import MEDIA, WHEP_OWNERS, WHIP_OWNERS

routes = web.RouteTableDef()

MAX_SDP_BYTES = 64 * 1024
PUBLISHERS = ("field", "commander", "admin")
VIEWERS = ("admin", "commander", "duty")


async def _offer(request: web.Request, *, kind: str) -> str:
    if request.content_type != "application/sdp":
        raise ApiError(415, "unsupported_media_type", "send the SDP offer as application/sdp")
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise ApiError(413, "too_large", "the SDP offer is too large")
    offer = await request.text()
    if len(offer) > MAX_SDP_BYTES:
        raise ApiError(413, "too_large", "the SDP offer is too large")
    if "v=0" not in offer or "m=video" not in offer:
        raise ApiError(400, "invalid_sdp", f"the body is not an SDP offer with a video section to {kind}")
    return offer


def _sdp_reply(answer: str, location: str) -> web.Response:
    return web.Response(status=201, body=answer.encode(), content_type="application/sdp", headers={"Location": location})


@routes.post("/whip/{name}")
async def whip_publish(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, PUBLISHERS)
    offer = await _offer(request, kind="publish")
    answer, session_id = await request.app[MEDIA].whip_publish(
        request.match_info["name"], offer, user_id=int(user["id"]), region=str(user["region"])
    )
    owners = request.app[WHIP_OWNERS]
    live = request.app[MEDIA].publishers.session_ids()
    for gone in [sid for sid in owners if sid not in live]:  # ended by the publisher or its watchdog
        del owners[gone]
    owners[session_id] = int(user["id"])
    return _sdp_reply(answer, f"/whip/sessions/{session_id}")


@routes.delete("/whip/sessions/{session_id}")
async def whip_end(request: web.Request) -> web.Response:
    user = user_of(request)
    session_id = request.match_info["session_id"]
    owners = request.app[WHIP_OWNERS]
    owner = owners.get(session_id)
    if owner is None or (owner != int(user["id"]) and user["role"] != "admin"):
        raise ApiError(404, "not_found", "no such publishing session")
    owners.pop(session_id, None)
    await request.app[MEDIA].whip_delete(session_id)
    return web.Response(status=200)


@routes.post("/whep/publishers/{name}")
async def whep_publisher(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, VIEWERS)
    name = request.match_info["name"]
    media = request.app[MEDIA]
    try:
        pub = media.publishers.get(name)
    except LookupError:
        pub = None
    if pub is None or not region_visible(user, pub.region):
        raise ApiError(404, "not_found", f"nobody is publishing as {name!r}")
    offer = await _offer(request, kind="view")
    answer, session_id = await media.whep_offer_publisher(name, offer)
    request.app[WHEP_OWNERS][session_id] = int(user["id"])
    return _sdp_reply(answer, f"/whep/sessions/{session_id}")


@routes.get("/api/v1/publishers")
async def list_publishers(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, VIEWERS)
    pubs = request.app[MEDIA].publishers.list()
    return json_reply([p.public() for p in pubs if region_visible(user, p.region)])
