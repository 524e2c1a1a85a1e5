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


@routes.get("/api/v1/analytics/load")
async def load(request: web.Request) -> web.Response:
    """Whether analytics keeps up (analytics/load.py), for everyone who reviews or reads flags.

    Duty officers learn from it that flags may come late, or not at all (no worker). The cameras
    that lose most are given only where the user may see them, by name."""
    user = user_of(request)
    require_role(user, READERS)
    report = request.app[ANALYTICS].load_report()
    names: dict[int, str] = {}
    if report["slowest"]:  # only when behind: consoles ask at each verdict, and a city has thousands of cameras
        names = {int(c["id"]): str(c["name"]) for c in await request.app[DISPATCH].list_cameras(user)}
    keys = ("state", "reasons", "window_s", "sampled", "analysed", "superseded_share", "failed", "sample_age_p99_s")
    return json_reply(
        {
            **{key: report[key] for key in keys},
            "slowest": [
                {"camera_id": c["camera_id"], "name": names[c["camera_id"]],
                 "analysed_per_s": c["analysed_per_s"], "sampled_per_s": c["sampled_per_s"]}
                for c in report["slowest"] if c["camera_id"] in names
            ],
        }
    )
