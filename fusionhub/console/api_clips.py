"""Evidence clips: a flag's MP4 (its case serves the same file as a "clip" attachment)."""

from __future__ import annotations

from aiohttp import web

from fusionhub.console.auth import require_role
from fusionhub.console.http import user_of
from fusionhub.console.keys import DISPATCH

routes = web.RouteTableDef()


@routes.get("/api/v1/flags/{flag_id}/clip.mp4")
async def flag_clip(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    require_role(user, ["duty", "commander", "admin"])
    path = await request.app[DISPATCH].flag_clip_path(user, request.match_info["flag_id"])
    # FileResponse answers Range requests, so the browser's player can seek
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=3600"})
