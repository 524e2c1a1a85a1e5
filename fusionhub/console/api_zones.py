"""Zone rule settings, zone edits, and the reference picture of bin zones (captured from the live camera)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fusionhub.analytics.bins import write_reference
from fusionhub.analytics.errors import EvidenceError
from fusionhub.analytics.windows import parse_window
from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import int_param, json_reply, read_body, user_of
from fusionhub.console.keys import ANALYTICS, CONFIG, DISPATCH, WIRING
from fusionhub.dispatch import files
from fusionhub.dispatch.models import to_datetime

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

READERS = ("admin", "commander", "duty")
RULE_KEYS = ("rule", "min_count", "windows", "realert_s", "threshold")
REFERENCE_MAX_AGE_S = 60.0  # an older analysed picture is not "the camera now"


class ZoneRules(BaseModel):
    """A zone's rule settings; None (or left out) means the default."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["occupied_road", "street_stall", "overflowing_bin"] | None = Field(
        None, description="road zones: occupied_road (default) or street_stall; bin zones: overflowing_bin"
    )
    min_count: int | None = Field(None, ge=1, le=50, description="at least this many must stay (default 1)")
    windows: list[str] | None = Field(
        None, max_length=8, description="active times 'HH:MM-HH:MM' in the hub's time zone; empty: always"
    )
    realert_s: float | None = Field(None, ge=60, le=7 * 86400, description="re-alert while it stays")
    threshold: float | None = Field(None, ge=0.05, le=0.95, description="bin zones: change score threshold")

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [str(parse_window(w)) for w in value]

    def rules(self) -> dict[str, Any]:
        """The rule settings as keyword arguments for the dispatch service."""
        return {k: getattr(self, k) for k in RULE_KEYS}


class ZonePatch(ZoneRules):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=128)
    polygon: list[list[float]] | None = Field(None, description="≥3 points [x, y], each 0–1")
    dwell_s: float | None = Field(None, ge=1, le=86400)
    classes: list[str] | None = Field(None, max_length=80)


def check_model_classes(request: web.Request, classes: list[str] | None) -> None:
    """422 when a zone names a class the configured model does not have (when the hub knows its classes)."""
    known = request.app[ANALYTICS].rule_env.model_classes
    if not classes or known is None:
        return
    unknown = [c for c in classes if c not in known]
    if unknown:
        model = request.app[CONFIG].analytics.model
        raise ApiError(422, "invalid_input", f"classes: {unknown[0]!r} is not a class of the model {model}")


@routes.get("/api/v1/cameras/{camera_id}/zones/{zone_id}")
async def get_zone(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, READERS)
    zone = await request.app[DISPATCH].get_zone(user, int_param(request, "camera_id"), int_param(request, "zone_id"))
    return json_reply(zone)


@routes.patch("/api/v1/cameras/{camera_id}/zones/{zone_id}")
async def update_zone(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    camera_id, zone_id = int_param(request, "camera_id"), int_param(request, "zone_id")
    body = await read_body(request, ZonePatch)
    fields = {k: getattr(body, k) for k in body.model_fields_set}
    for key in ("name", "polygon", "dwell_s"):
        if key in fields and fields[key] is None:
            raise ApiError(422, "invalid_input", f"{key}: cannot be cleared")
    check_model_classes(request, fields.get("classes"))
    zone = await request.app[DISPATCH].update_zone(user, camera_id, zone_id, **fields)
    await request.app[WIRING].refresh(camera_id)
    return json_reply(zone)


@routes.post("/api/v1/cameras/{camera_id}/zones/{zone_id}/reference")
async def capture_reference(request: web.Request) -> web.Response:
    """The camera's latest analysed picture becomes the bin zone's normal state."""
    user = user_of(request)
    require_role(user, ["admin"])
    camera_id, zone_id = int_param(request, "camera_id"), int_param(request, "zone_id")
    dispatch = request.app[DISPATCH]
    zone = await dispatch.get_zone(user, camera_id, zone_id)  # 404 outside the admin's region
    if zone["kind"] != "bin":
        raise ApiError(422, "invalid_input", "kind: only bin zones have a reference picture")
    latest = request.app[ANALYTICS].latest(camera_id)
    if latest is None:
        raise ApiError(503, "no_frame", "analytics has not seen this camera yet; wait until it is online")
    age = time.time() - latest.ts
    if age > REFERENCE_MAX_AGE_S:
        raise ApiError(503, "no_frame", f"the latest analysed picture is {age:.0f} s old; is the camera online?")
    data_dir: Path = request.app[CONFIG].data_dir
    try:
        rel = await asyncio.to_thread(write_reference, data_dir, camera_id, zone_id, latest.frame)
    except EvidenceError as exc:
        raise ApiError(500, "storage_failed", str(exc)) from exc
    try:
        zone, old = await dispatch.set_zone_reference(user, camera_id, zone_id, rel, to_datetime(latest.ts))
    except BaseException:
        await asyncio.to_thread((data_dir / rel).unlink, missing_ok=True)
        raise
    request.app[ANALYTICS].rule_env.put_reference(camera_id, zone_id, rel, latest.frame, zone["polygon"])
    await request.app[WIRING].refresh(camera_id)
    stale = files.resolve(data_dir, old) if old and old != rel else None
    if stale is not None:
        await asyncio.to_thread(stale.unlink, missing_ok=True)
    log.info("camera %d: reference of zone %d captured (%s)", camera_id, zone_id, rel)
    return json_reply(zone, status=201)


@routes.get("/api/v1/cameras/{camera_id}/zones/{zone_id}/reference.png")
async def reference_picture(request: web.Request) -> web.FileResponse:
    user = user_of(request)
    require_role(user, READERS)
    path = await request.app[DISPATCH].zone_reference_file(
        user, int_param(request, "camera_id"), int_param(request, "zone_id")
    )
    return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": "private, no-cache"})
