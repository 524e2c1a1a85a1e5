"""Typed application keys for the shared resources the aiohttp app owns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from fusionhub.analytics.hub import AnalyticsHub
    from fusionhub.console.auth import TokenSigner
    from fusionhub.console.config import HubConfig
    from fusionhub.console.wiring import CameraWiring
    from fusionhub.dispatch.service import DispatchService
    from fusionhub.media.gateway import MediaGateway
    from fusionhub.signaling.bus import Bus
    from fusionhub.signaling.ws import WsHub

CONFIG: web.AppKey[HubConfig] = web.AppKey("config")
SIGNER: web.AppKey[TokenSigner] = web.AppKey("signer")
DISPATCH: web.AppKey[DispatchService] = web.AppKey("dispatch")
BUS: web.AppKey[Bus] = web.AppKey("bus")
WSHUB: web.AppKey[WsHub] = web.AppKey("wshub")
MEDIA: web.AppKey[MediaGateway] = web.AppKey("media")
ANALYTICS: web.AppKey[AnalyticsHub] = web.AppKey("analytics")
WIRING: web.AppKey[CameraWiring] = web.AppKey("wiring")
# WHEP session id -> user id, so only the viewer who opened a session (or an admin) ends it
WHEP_OWNERS: web.AppKey[dict[str, int]] = web.AppKey("whep_owners")
