"""Cameras and their zones. A camera's URLs may carry credentials: they leave only for the media
gateway (camera_source_url, all_cameras_internal)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.camera_settings import check_analysis, check_sampling
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Forbidden, Invalid, NotFound
from fusionhub.dispatch.models import Camera, Zone
from fusionhub.dispatch.views import camera_dict, zone_dict
from fusionhub.dispatch.zonerules import ZONE_KINDS, check_classes, check_rule_fields

READERS = ("admin", "commander", "duty")
CAMERA_FIELDS = frozenset({"name", "url", "region", "enabled", "sampling", "analysis", "substream_url"})
MAX_DWELL_S = 86400.0
MAX_POINTS = 256


def check_polygon(polygon: Any) -> list[list[float]]:
    """At least 3 points [x, y], each a finite number within 0–1; Invalid(field "polygon") otherwise."""
    if not isinstance(polygon, Sequence) or isinstance(polygon, str) or len(polygon) < 3:
        raise Invalid("polygon", "needs at least 3 points [x, y]")
    if len(polygon) > MAX_POINTS:
        raise Invalid("polygon", f"at most {MAX_POINTS} points")
    points: list[list[float]] = []
    for i, point in enumerate(polygon):
        if not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 2:
            raise Invalid("polygon", f"point {i} must be [x, y]")
        coords: list[float] = []
        for value in point:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise Invalid("polygon", f"point {i} has a coordinate that is not a number")
            if not 0.0 <= value <= 1.0:
                raise Invalid("polygon", f"point {i} is outside the picture: coordinates go from 0 to 1")
            coords.append(float(value))
        points.append(coords)
    return points


def check_dwell(dwell_s: Any) -> float:
    """Seconds an object must stay in the zone, 1 to 86400."""
    if isinstance(dwell_s, bool) or not isinstance(dwell_s, int | float) or not math.isfinite(dwell_s):
        raise Invalid("dwell_s", "must be a number of seconds")
    if not 1.0 <= dwell_s <= MAX_DWELL_S:
        raise Invalid("dwell_s", "must be between 1 and 86400 seconds")
    return float(dwell_s)


def _check_substream(url: str, substream_url: Any) -> str | None:
    """None (analytics decodes the main stream), or a substream URL that is not the main URL."""
    if substream_url is None:
        return None
    sub = _check_text("substream_url", substream_url, 2048)
    if sub == url:
        raise Invalid("substream_url", "is the main url: leave it empty to analyse the main stream")
    return sub


def _check_text(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(field, "must not be empty")
    if len(value) > limit:
        raise Invalid(field, f"at most {limit} characters")
    return value.strip()


class CameraService(ServiceCore):
    """Cameras and zones, region-scoped; writes are the admin's."""

    async def _camera(self, session: AsyncSession, viewer: Viewer | None, camera_id: int) -> Camera:
        camera = await session.get(Camera, camera_id, options=[selectinload(Camera.zones)])
        if camera is None or (viewer is not None and not region_visible(viewer, camera.region)):
            raise NotFound(f"no camera {camera_id}")
        return camera

    def _own_region(self, viewer: Viewer, region: str) -> str:
        region = _check_text("region", region, 128)
        if not region_visible(viewer, region):
            raise Forbidden(f"you manage region {viewer['region']} and below, not {region}")
        return region

    async def create_camera(
        self,
        viewer: Viewer,
        name: str,
        url: str,
        region: str,
        *,
        sampling: Any = None,
        analysis: Any = None,
        substream_url: str | None = None,
    ) -> dict[str, Any]:
        """A new camera (the caller has validated the URLs); sampling/analysis as in camera_settings;
        `substream_url`: the stream analytics decodes instead of the main one (None: the main one)."""
        require_role(viewer, "admin")
        main_url = _check_text("url", url, 2048)
        camera = Camera(
            name=_check_text("name", name, 128),
            url=main_url,
            substream_url=_check_substream(main_url, substream_url),
            region=self._own_region(viewer, region),
            enabled=True,
            created_at=self.now(),
            sampling=check_sampling(sampling),
            analysis=check_analysis(analysis),
        )
        camera.zones = []
        async with self.write_session() as session, session.begin():
            session.add(camera)
        return camera_dict(camera)

    async def list_cameras(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Cameras in the viewer's region and below."""
        require_role(viewer, *READERS)
        async with self.read_session() as session:
            cams = await session.scalars(
                select(Camera)
                .where(region_filter(Camera.region, viewer))
                .options(selectinload(Camera.zones))
                .order_by(Camera.id)
            )
            return [camera_dict(c) for c in cams]

    async def get_camera(self, viewer: Viewer, camera_id: int) -> dict[str, Any]:
        """One camera; NotFound outside the viewer's region."""
        require_role(viewer, *READERS)
        async with self.read_session() as session:
            return camera_dict(await self._camera(session, viewer, camera_id))

    async def update_camera(self, viewer: Viewer, camera_id: int, **fields: Any) -> dict[str, Any]:
        """Change any of name, url, region, enabled, sampling, analysis (None: back to the defaults),
        substream_url (None: analytics decodes the main stream)."""
        require_role(viewer, "admin")
        unknown = set(fields) - CAMERA_FIELDS
        if unknown:
            raise Invalid(sorted(unknown)[0], "not a camera field")
        async with self.write_session() as session, session.begin():
            camera = await self._camera(session, viewer, camera_id)
            if "name" in fields:
                camera.name = _check_text("name", fields["name"], 128)
            if "url" in fields:
                camera.url = _check_text("url", fields["url"], 2048)
            if "region" in fields:
                camera.region = self._own_region(viewer, fields["region"])
            if "enabled" in fields:
                if not isinstance(fields["enabled"], bool):
                    raise Invalid("enabled", "must be true or false")
                camera.enabled = fields["enabled"]
            if "sampling" in fields:
                camera.sampling = check_sampling(fields["sampling"])
            if "analysis" in fields:
                camera.analysis = check_analysis(fields["analysis"])
            if "substream_url" in fields or "url" in fields:
                sub = fields["substream_url"] if "substream_url" in fields else camera.substream_url
                camera.substream_url = _check_substream(camera.url, sub)
        return camera_dict(camera)

    async def delete_camera(self, viewer: Viewer, camera_id: int) -> None:
        """Remove a camera and its zones; its flags and cases keep their copy of the names."""
        require_role(viewer, "admin")
        async with self.write_session() as session, session.begin():
            await self._camera(session, viewer, camera_id)
            await session.execute(delete(Camera).where(Camera.id == camera_id))

    async def add_zone(
        self,
        viewer: Viewer,
        camera_id: int,
        name: str,
        kind: str,
        polygon: Any,
        dwell_s: Any,
        classes: list[str] | None,
        **rules: Any,
    ) -> dict[str, Any]:
        """A new zone on a camera; Invalid (with the field) for a bad polygon, dwell, kind or rule
        setting (`rules`: rule, min_count, windows, realert_s, threshold; see zonerules)."""
        require_role(viewer, "admin")
        zone_name = _check_text("name", name, 128)
        if kind not in ZONE_KINDS:
            raise Invalid("kind", f"one of {', '.join(ZONE_KINDS)}")
        points = check_polygon(polygon)
        dwell = check_dwell(dwell_s)
        classes = check_classes(classes)
        settings = check_rule_fields(kind, rules)
        async with self.write_session() as session, session.begin():
            await self._camera(session, viewer, camera_id)
            zone = Zone(
                camera_id=camera_id, name=zone_name, kind=kind, polygon=points, dwell_s=dwell, classes=classes,
                **settings,
            )
            session.add(zone)
        return zone_dict(zone)

    async def delete_zone(self, viewer: Viewer, camera_id: int, zone_id: int) -> None:
        """Remove one zone of a camera."""
        require_role(viewer, "admin")
        async with self.write_session() as session, session.begin():
            await self._camera(session, viewer, camera_id)
            result = await session.execute(delete(Zone).where(Zone.id == zone_id, Zone.camera_id == camera_id))
            if getattr(result, "rowcount", 0) == 0:
                raise NotFound(f"no zone {zone_id} on camera {camera_id}")

    async def camera_source_url(self, camera_id: int) -> str:
        """The camera URL with its credentials, for the media gateway only. Never log or return it."""
        async with self.read_session() as session:
            return (await self._camera(session, None, camera_id)).url

    async def all_cameras_internal(self) -> list[dict[str, Any]]:
        """Every camera with its full URL and zones, for wiring media and analytics (never for clients)."""
        async with self.read_session() as session:
            cams = await session.scalars(select(Camera).options(selectinload(Camera.zones)).order_by(Camera.id))
            return [
                {
                    "id": c.id,
                    "name": c.name,
                    "region": c.region,
                    "url": c.url,
                    "substream_url": c.substream_url,
                    "enabled": c.enabled,
                    "sampling": c.sampling,
                    "analysis": c.analysis,
                    "zones": [{**zone_dict(z), "reference_path": z.reference_path} for z in c.zones],
                }
                for c in cams
            ]
