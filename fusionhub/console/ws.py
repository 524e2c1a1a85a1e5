"""The /ws endpoint: login at the handshake, Origin checked, then the signaling websocket protocol."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from fusionhub.console.api_calls import call_visible
from fusionhub.console.auth import User, region_visible
from fusionhub.console.errors import ApiError
from fusionhub.console.http import user_of
from fusionhub.console.keys import CONFIG, WIRING, WSHUB
from fusionhub.signaling.messages import Topic

routes = web.RouteTableDef()

PROTOCOL = "fusionhub.v1"
TOKEN_PREFIX = "bearer."

_STAFF = ("admin", "commander", "duty")


def token_from_protocols(request: web.Request) -> str | None:
    """Browsers cannot set headers on a websocket: the token rides as a subprotocol."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for item in (p.strip() for p in offered.split(",")):
        if item.startswith(TOKEN_PREFIX) and len(item) > len(TOKEN_PREFIX):
            return item[len(TOKEN_PREFIX):]
    return None


def _origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser: scripts and other hubs authenticate with the token alone
        return True
    try:
        parsed = URL(origin)
    except ValueError:
        return False
    if parsed.host is not None and f"{parsed.host}:{parsed.explicit_port or parsed.port}" == _own_host(request):
        return True
    return origin in request.app[CONFIG].http.allowed_origins


def _own_host(request: web.Request) -> str:
    host = URL(f"//{request.host}")
    port = host.explicit_port or (443 if request.secure else 80)
    return f"{host.host}:{port}"


def _instruction_visible(user: User, topic: str, data: dict[str, Any]) -> bool:
    """Instructions: recipients see theirs (team or name); staff see those sent from or to their
    region. An escalation goes to the commanders and duty officers over the recipient, and the sender."""
    role = user["role"]
    if topic == Topic.INSTRUCTION_ESCALATED:
        return role in ("commander", "duty") and (
            region_visible(user, data.get("region")) or data.get("created_by") == user["id"]
        )
    if role == "field":
        team_id = user.get("team_id")
        return user["id"] in data.get("user_ids", []) or (team_id is not None and team_id in data.get("team_ids", []))
    return region_visible(user, data.get("region")) or any(
        region_visible(user, r) for r in data.get("recipient_regions", [])
    )


def event_filter(app: web.Application, user: User) -> Any:
    """What this user may see of the events pushed to consoles."""
    wiring = app[WIRING]

    def accepts(topic: str, data: dict[str, Any]) -> bool:
        role = user["role"]
        if topic == Topic.CAMERA_STATUS:
            return role in _STAFF and region_visible(user, wiring.region_of(int(data["camera_id"])))
        if topic == Topic.CALL_CHANGED:
            return call_visible(user, data)
        if topic in (Topic.INSTRUCTION_CHANGED, Topic.INSTRUCTION_ESCALATED):
            return _instruction_visible(user, topic, data)
        if topic == Topic.ANALYTICS_LOAD:  # names no camera: GET /api/v1/analytics/load does, by region
            return role in _STAFF
        if not region_visible(user, data.get("region")):
            return False
        if topic in (Topic.FLAG_CREATED, Topic.FLAG_REVIEWED, Topic.FLAG_CLIP, Topic.PUBLISHER_STATUS):
            return role in _STAFF
        if topic in (Topic.CASE_CHANGED, Topic.TASK_CHANGED, Topic.CASE_ALERT):
            return role != "field" or (
                user.get("team_id") is not None and data.get("team_id") == user["team_id"]
            )
        return False

    return accepts


@routes.get("/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    user = user_of(request)
    if not _origin_allowed(request):
        raise ApiError(403, "origin_refused", "this page's origin may not open the hub's websocket")
    ws = web.WebSocketResponse(protocols=[PROTOCOL], heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    await request.app[WSHUB].serve(ws, user=user, accepts=event_filter(request.app, user))
    return ws
