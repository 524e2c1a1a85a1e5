"""What review teaches about the analytics (per-rule precision from duty officers' decisions), and
the analytics hub's own state for the admin (model, workers, counts)."""

from __future__ import annotations

import math

from aiohttp import web

from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import json_reply, user_of
from fusionhub.console.keys import ANALYTICS, DISPATCH

routes = web.RouteTableDef()

READERS = ("admin", "commander", "duty")


def _query_number(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ApiError(422, "invalid_input", f"{name}: must be a non-negative number")
    return value


@routes.get("/api/v1/analytics/precision")
async def precision(request: web.Request) -> web.Response:
    """Per rule: confirmed, dismissed, pending, attached, and precision = confirmed / reviewed."""
    user = user_of(request)
    require_role(user, READERS)
    since = _query_number(request, "since")
    camera = _query_number(request, "camera_id")
    if camera is not None and camera != int(camera):
        raise ApiError(422, "invalid_input", "camera_id: must be a whole number")
    rules = await request.app[DISPATCH].rule_precision(
        user, since=since, camera_id=int(camera) if camera is not None else None
    )
    return json_reply({"since": since, "camera_id": int(camera) if camera is not None else None, "rules": rules})


@routes.get("/api/v1/analytics/workers")
async def workers(request: web.Request) -> web.Response:
    """The model, every worker the hub knows (ready, busy, runtime, round trip) and its counts."""
    require_role(user_of(request), ("admin",))
    return json_reply(request.app[ANALYTICS].status())
