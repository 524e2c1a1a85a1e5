"""Cameras, their zones and snapshots. A camera URL's credentials are write-only."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from fusionhub.console.api_zones import ZoneRules, check_model_classes
from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import int_param, json_reply, read_body, user_of
from fusionhub.console.keys import DISPATCH, MEDIA, WIRING
from fusionhub.media.errors import InvalidCameraUrl, MediaError
from fusionhub.media.urls import strip_credentials, validate_camera_url

routes = web.RouteTableDef()

READERS = ("admin", "commander", "duty")
REGION_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"


class Sampling(BaseModel):
    """How the camera is sampled for analytics (docs/API.md, "Camera analytics settings")."""

    model_config = ConfigDict(extra="forbid", strict=True)
    mode: Literal["keyframes", "fps"] = "keyframes"
    fps: float = Field(1.0, gt=0, le=30)


class Analysis(BaseModel):
    """How the camera's samples are analysed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    imgsz: int | None = Field(None, ge=160, le=1280, multiple_of=32)
    motion_gate: bool = True


class NewCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048)
    region: str = Field(min_length=1, max_length=128, pattern=REGION_PATTERN)
    sampling: Sampling | None = None
    analysis: Analysis | None = None
    substream_url: str | None = Field(None, min_length=1, max_length=2048)


class CameraPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=128)
    url: str | None = Field(None, min_length=1, max_length=2048)
    region: str | None = Field(None, min_length=1, max_length=128, pattern=REGION_PATTERN)
    enabled: bool | None = None
    sampling: Sampling | None = None  # null: back to the hub's defaults
    analysis: Analysis | None = None
    substream_url: str | None = Field(None, min_length=1, max_length=2048)  # null: analyse the main stream


class NewZone(ZoneRules):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["road", "bin"] = Field("road", description="road: nothing may stay; bin: a bin must not overflow")
    polygon: list[list[float]] = Field(description="≥3 points [x, y], each 0–1")
    dwell_s: float = Field(60.0, ge=1, le=86400)
    classes: list[str] | None = Field(None, max_length=80)


def _public(request: web.Request, cam: dict[str, Any]) -> dict[str, Any]:
    """A camera as the API shows it: no credentials, live status merged in."""
    out = dict(cam)
    public_url, has_credentials = (
        strip_credentials(cam["url"]) if cam["url"].startswith("rtsp") else (cam["url"], False)
    )
    out["url"] = public_url
    out["has_credentials"] = bool(cam.get("has_credentials")) or has_credentials
    sub = cam.get("substream_url")
    if sub:
        out["substream_url"], sub_credentials = strip_credentials(sub)
        out["substream_has_credentials"] = bool(cam.get("substream_has_credentials")) or sub_credentials
    # live: analytics decodes the substream (true), the main stream while it is down (false), null:
    # no substream, or not pulled now
    out["substream_online"] = request.app[MEDIA].substream_online(int(cam["id"])) if sub else None
    try:
        status = request.app[MEDIA].status(int(cam["id"]))
        out["status"] = {"state": status.state, "reason": status.reason, "since": status.since}
    except MediaError:
        out["status"] = {"state": "stopped", "reason": None, "since": None}
    return out


def _checked_url(url: str, field: str = "url") -> str:
    try:
        return validate_camera_url(url)
    except InvalidCameraUrl as exc:
        message = str(exc) if field == "url" else str(exc).replace("camera url", "substream url", 1)
        raise ApiError(422, "invalid_url", message) from exc


@routes.get("/api/v1/cameras")
async def list_cameras(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, READERS)
    cams = await request.app[DISPATCH].list_cameras(user)
    return json_reply([_public(request, c) for c in cams])


@routes.post("/api/v1/cameras")
async def create_camera(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    body = await read_body(request, NewCamera)
    url = _checked_url(body.url)
    substream_url = _checked_url(body.substream_url, "substream_url") if body.substream_url is not None else None
    cam = await request.app[DISPATCH].create_camera(
        user, body.name, url, body.region,
        sampling=body.sampling.model_dump() if body.sampling else None,
        analysis=body.analysis.model_dump() if body.analysis else None,
        substream_url=substream_url,
    )
    await request.app[WIRING].refresh(int(cam["id"]))
    return json_reply(_public(request, cam), status=201)


@routes.get("/api/v1/cameras/{camera_id}")
async def get_camera(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, READERS)
    cam = await request.app[DISPATCH].get_camera(user, int_param(request, "camera_id"))
    return json_reply(_public(request, cam))


@routes.patch("/api/v1/cameras/{camera_id}")
async def update_camera(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    camera_id = int_param(request, "camera_id")
    body = await read_body(request, CameraPatch)
    fields = body.model_dump(exclude_none=True)
    # an explicit null puts the hub's defaults back (for substream_url: analyse the main stream)
    for name in ("sampling", "analysis", "substream_url"):
        if name in body.model_fields_set and getattr(body, name) is None:
            fields[name] = None
    if "url" in fields:
        fields["url"] = _checked_url(fields["url"])
    if fields.get("substream_url") is not None:
        fields["substream_url"] = _checked_url(fields["substream_url"], "substream_url")
    cam = await request.app[DISPATCH].update_camera(user, camera_id, **fields)
    await request.app[WIRING].refresh(camera_id)
    return json_reply(_public(request, cam))


@routes.delete("/api/v1/cameras/{camera_id}")
async def delete_camera(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    camera_id = int_param(request, "camera_id")
    await request.app[DISPATCH].delete_camera(user, camera_id)
    await request.app[WIRING].forget(camera_id)
    return web.Response(status=204)


@routes.post("/api/v1/cameras/{camera_id}/zones")
async def add_zone(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    camera_id = int_param(request, "camera_id")
    body = await read_body(request, NewZone)
    check_model_classes(request, body.classes)
    zone = await request.app[DISPATCH].add_zone(
        user, camera_id, body.name, body.kind, body.polygon, body.dwell_s, body.classes, **body.rules()
    )
    await request.app[WIRING].refresh(camera_id)
    return json_reply(zone, status=201)


@routes.delete("/api/v1/cameras/{camera_id}/zones/{zone_id}")
async def delete_zone(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    camera_id = int_param(request, "camera_id")
    await request.app[DISPATCH].delete_zone(user, camera_id, int_param(request, "zone_id"))
    await request.app[WIRING].refresh(camera_id)
    return web.Response(status=204)


@routes.get("/api/v1/cameras/{camera_id}/snapshot.jpg")
async def snapshot(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, READERS)
    camera_id = int_param(request, "camera_id")
    await request.app[DISPATCH].get_camera(user, camera_id)  # 404 outside the user's region
    jpeg = await request.app[MEDIA].snapshot_jpeg(camera_id)
    if jpeg is None:
        raise ApiError(503, "no_frame", "the camera has not sent a picture yet")
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})
