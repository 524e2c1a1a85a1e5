"""Zone look-ups, rule edits and the reference picture of bin zones (the camera's region decides access)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer, require_role
from fusionhub.dispatch.cameras import CameraService, check_dwell, check_polygon
from fusionhub.dispatch.errors import Invalid, NotFound
from fusionhub.dispatch.models import Zone
from fusionhub.dispatch.views import zone_dict
from fusionhub.dispatch.zonerules import RULE_FIELDS, check_classes, check_rule_fields

ZONE_READERS = ("admin", "commander", "duty")
ZONE_EDITS = RULE_FIELDS | {"name", "polygon", "dwell_s", "classes"}


class ZoneService(CameraService):
    """Zones of a camera: read one, change its rule settings, keep a bin zone's reference picture."""

    async def _zone(self, session: AsyncSession, viewer: Viewer, camera_id: int, zone_id: int) -> Zone:
        camera = await self._camera(session, viewer, camera_id)
        for zone in camera.zones:
            if zone.id == zone_id:
                return zone
        raise NotFound(f"no zone {zone_id} on camera {camera_id}")

    async def get_zone(self, viewer: Viewer, camera_id: int, zone_id: int) -> dict[str, Any]:
        """One zone of a camera in the viewer's region."""
        require_role(viewer, *ZONE_READERS)
        async with self.read_session() as session:
            return zone_dict(await self._zone(session, viewer, camera_id, zone_id))

    async def update_zone(self, viewer: Viewer, camera_id: int, zone_id: int, **fields: Any) -> dict[str, Any]:
        """Admin: change a zone's name, polygon, dwell, classes or rule settings (None: back to the
        default). A new polygon drops a bin zone's reference picture: it no longer shows the zone."""
        require_role(viewer, "admin")
        unknown = set(fields) - ZONE_EDITS
        if unknown:
            raise Invalid(sorted(unknown)[0], "not a zone field")
        async with self.write_session() as session, session.begin():
            zone = await self._zone(session, viewer, camera_id, zone_id)
            current = {k: getattr(zone, k) for k in RULE_FIELDS}
            rules = check_rule_fields(zone.kind, {**current, **{k: v for k, v in fields.items() if k in RULE_FIELDS}})
            if "name" in fields:
                name = fields["name"]
                if not isinstance(name, str) or not name.strip() or len(name) > 128:
                    raise Invalid("name", "1 to 128 characters")
                zone.name = name.strip()
            if "dwell_s" in fields:
                zone.dwell_s = check_dwell(fields["dwell_s"])
            if "classes" in fields:
                zone.classes = check_classes(fields["classes"])
            if "polygon" in fields:
                points = check_polygon(fields["polygon"])
                if points != zone.polygon:
                    zone.polygon = points
                    zone.reference_path = zone.reference_at = None
            for key, value in rules.items():
                setattr(zone, key, value)
        return zone_dict(zone)

    async def set_zone_reference(
        self, viewer: Viewer, camera_id: int, zone_id: int, path: str, captured_at: datetime
    ) -> tuple[dict[str, Any], str | None]:
        """Admin: record a bin zone's new reference picture; returns the zone and the replaced file's path."""
        require_role(viewer, "admin")
        if not files.is_safe_relative(path):
            raise Invalid("reference", "must be a path inside the data directory")
        async with self.write_session() as session, session.begin():
            zone = await self._zone(session, viewer, camera_id, zone_id)
            if zone.kind != "bin":
                raise Invalid("kind", "only bin zones have a reference picture")
            old = zone.reference_path
            zone.reference_path, zone.reference_at = path, captured_at
        return zone_dict(zone), old

    async def zone_reference_file(self, viewer: Viewer, camera_id: int, zone_id: int) -> Path:
        """The reference picture of a zone on disk; NotFound when none was captured."""
        require_role(viewer, *ZONE_READERS)
        async with self.read_session() as session:
            zone = await self._zone(session, viewer, camera_id, zone_id)
        path = files.resolve(self.data_dir, zone.reference_path) if zone.reference_path else None
        if path is None or not await asyncio.to_thread(path.is_file):
            raise NotFound(f"zone {zone_id} has no reference picture; capture one first")
        return path
