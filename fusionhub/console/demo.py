"""`fusionhub demo`: the hub on embedded defaults with a built-in demo camera and one login per role."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from fusionhub.console.config import HubConfig
from fusionhub.dispatch.db import create_engine, upgrade
from fusionhub.dispatch.demo import seed_demo
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.democlip import bus_image, make_scene_clip

DEMO_REGION = "demo"
DEMO_CAMERA = "street"
DEMO_ROLES = ("admin", "commander", "duty", "field1")
# The road under the parked bus in the demo clip (normalised 0–1 coordinates of the frame).
DEMO_ZONE = [[0.0, 0.55], [1.0, 0.55], [1.0, 0.9], [0.0, 0.9]]
DEMO_DWELL_S = 10.0


def demo_logins(data_dir: Path) -> dict[str, str]:
    """Demo passwords: random per installation, kept in the data directory (owner-only)."""
    path = data_dir / "demo" / "logins.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if all(isinstance(stored.get(r), str) for r in DEMO_ROLES):
            return {r: stored[r] for r in DEMO_ROLES}
    except (OSError, ValueError):
        pass
    logins = {role: f"{role}-{secrets.token_urlsafe(6)}" for role in DEMO_ROLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(logins, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return logins


def demo_clip(data_dir: Path) -> Path:
    """The demo camera's clip: an empty road, then a bus parks on it; made once."""
    out = data_dir / "demo" / f"{DEMO_CAMERA}.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.mp4")
        make_scene_clip(tmp, image=bus_image(), seconds_empty=8.0, seconds_present=40.0)
        tmp.replace(out)
    return out


async def prepare_demo(config: HubConfig) -> dict[str, str]:
    """Create the schema, the demo users, team, camera and road zone (idempotent)."""
    logins = demo_logins(config.data_dir)
    demo_clip(config.data_dir)
    url = config.resolved_database_url()
    await upgrade(url)
    engine = create_engine(url)
    try:
        service = DispatchService(engine, data_dir=config.data_dir)
        await seed_demo(service, passwords=logins)
        admin = await service.authenticate("admin", logins["admin"])
        assert admin is not None
        cameras: list[dict[str, Any]] = await service.list_cameras(admin)
        if not any(c["name"] == DEMO_CAMERA for c in cameras):
            cam = await service.create_camera(admin, DEMO_CAMERA, f"demo:{DEMO_CAMERA}", DEMO_REGION)
            await service.add_zone(admin, int(cam["id"]), "bus lane", "road", DEMO_ZONE, DEMO_DWELL_S, None)
    finally:
        await engine.dispose()
    return logins
