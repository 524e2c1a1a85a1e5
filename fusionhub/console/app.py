"""The aiohttp application: owns every shared resource (set up and torn down in `cleanup_ctx`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from fusionhub.analytics.hub import AnalyticsHub
from fusionhub.console import (
    api_analytics,
    api_calls,
    api_cameras,
    api_cases,
    api_clips,
    api_instructions,
    api_people,
    api_rooms,
    api_stats,
    api_terminals,
    api_workflow,
    api_zones,
    webrtc,
    whip,
    ws,
)
from fusionhub.console.auth import TokenSigner, bearer_token, load_or_create_secret
from fusionhub.console.busintake import BusIntake
from fusionhub.console.config import HubConfig
from fusionhub.console.errors import ApiError, error_middleware
from fusionhub.console.http import USER_KEY
from fusionhub.console.intercom import intercom_ctx
from fusionhub.console.keys import (
    ANALYTICS,
    BUS,
    CONFIG,
    DISPATCH,
    MEDIA,
    SIGNER,
    WHEP_OWNERS,
    WHIP_OWNERS,
    WIRING,
    WSHUB,
)
from fusionhub.console.mediawiring import evidence_ctx
from fusionhub.console.supervision import supervision_ctx
from fusionhub.console.tasking import tasking_ctx
from fusionhub.console.wiring import CameraWiring, StatusRelay
from fusionhub.dispatch.db import create_engine, upgrade
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.gateway import MediaGateway
from fusionhub.signaling.bus import create_bus, process_group
from fusionhub.signaling.messages import AnalyticsLoad, FlagRaised, FlagReview, Topic, ZoneSighting
from fusionhub.signaling.ws import WsBridge, WsHub

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC_DIR = Path(str(resources.files("fusionhub.console") / "static"))
PUBLIC_PATHS = frozenset({"/api/v1/auth/login"})
CONSOLE_TOPICS = [
    Topic.FLAG_CREATED,
    Topic.FLAG_REVIEWED,
    Topic.CASE_CHANGED,
    Topic.TASK_CHANGED,
    Topic.CASE_ALERT,
    Topic.CAMERA_STATUS,
    Topic.FLAG_CLIP,
    Topic.PUBLISHER_STATUS,
    Topic.CALL_CHANGED,
    Topic.INSTRUCTION_CHANGED,
    Topic.INSTRUCTION_ESCALATED,
    Topic.ANALYTICS_LOAD,
]


def _needs_login(path: str) -> bool:
    return path.startswith(("/api/", "/whep/", "/whip/")) or path == "/ws"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API, WebRTC and websocket route needs a valid token of an existing user."""
    if _needs_login(request.path) and request.path not in PUBLIC_PATHS:
        token = bearer_token(request)
        if token is None and request.path == "/ws":
            token = ws.token_from_protocols(request)
        if token is None:
            raise ApiError(401, "unauthenticated", "log in first: this needs a bearer token")
        user_id = request.app[SIGNER].verify(token)
        user = await request.app[DISPATCH].get_user(user_id) if user_id is not None else None
        if user is None:
            raise ApiError(401, "unauthenticated", "the login has expired or is not valid; log in again")
        request[USER_KEY] = user
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages load nothing from elsewhere; responses are not sniffed or framed."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            "connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


async def _page(request: web.Request, name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name)


async def console_page(request: web.Request) -> web.FileResponse:
    return await _page(request, "index.html")


async def field_page(request: web.Request) -> web.FileResponse:
    return await _page(request, "field.html")


def build_app(config: HubConfig) -> web.Application:
    """The hub's web application; resources start when the app starts."""
    app = web.Application(
        middlewares=[security_headers, error_middleware, auth_middleware],
        client_max_size=8 * 1024 * 1024,
    )
    app[CONFIG] = config
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app[SIGNER] = TokenSigner(
        load_or_create_secret(config.data_dir / config.auth.secret_file),
        ttl_s=config.auth.token_ttl_s,
    )
    app[WHEP_OWNERS] = {}
    app[WHIP_OWNERS] = {}
    for module in (api_people, api_cameras, api_cases, api_rooms, webrtc, ws, api_zones, api_analytics, whip, api_clips):
        app.router.add_routes(module.routes)
    for module in (api_instructions, api_stats):
        app.router.add_routes(module.routes)
    app.router.add_routes(api_workflow.routes)
    app.router.add_routes(api_calls.routes)
    app.router.add_routes(api_terminals.routes)
    app.router.add_get("/", console_page)
    app.router.add_get("/field", field_page)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.on_shutdown.append(_close_websockets)
    app.cleanup_ctx.append(_records_and_bus)
    app.cleanup_ctx.append(_websockets)
    app.cleanup_ctx.append(tasking_ctx)
    app.cleanup_ctx.append(supervision_ctx)
    app.cleanup_ctx.append(_media_and_analytics)
    app.cleanup_ctx.append(intercom_ctx)
    app.cleanup_ctx.append(api_calls.calls_ctx)
    app.cleanup_ctx.append(api_terminals.terminals_ctx)
    app.cleanup_ctx.append(evidence_ctx)
    return app


async def _records_and_bus(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    url = config.resolved_database_url()
    await upgrade(url)
    engine = create_engine(url, pool_size=config.database_pool)
    bus = create_bus(config.bus)

    async def publish(topic: Topic, data: dict[str, Any]) -> None:
        await bus.publish(topic, data)

    app[BUS] = bus
    app[DISPATCH] = DispatchService(
        engine, data_dir=config.data_dir, publish=publish, timezone=config.timezone, config=config.dispatch
    )
    try:
        yield
    finally:
        await bus.close()
        await engine.dispose()


async def _websockets(app: web.Application) -> AsyncIterator[None]:
    hub = WsHub()
    bridge = WsBridge(app[BUS], hub, CONSOLE_TOPICS, group=process_group("ws"), transient=True)
    app[WSHUB] = hub
    await bridge.start()
    try:
        yield
    finally:
        await bridge.stop()
        await hub.close()


async def _close_websockets(app: web.Application) -> None:
    # aiohttp waits for open websocket handlers before cleanup_ctx runs: end them first
    if WSHUB in app:
        await app[WSHUB].close()


async def _media_and_analytics(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    bus = app[BUS]

    async def on_flag(flag: Any) -> None:
        await bus.publish(Topic.FLAG_RAISED, flag.model_dump(mode="json"))

    async def on_sighting(seen: ZoneSighting) -> None:
        await bus.publish(Topic.ZONE_SIGHTING, seen.model_dump(mode="json"))

    async def on_load(load: AnalyticsLoad) -> None:
        await bus.publish(Topic.ANALYTICS_LOAD, load.model_dump(mode="json"))

    analytics = AnalyticsHub(
        config.analytics, data_dir=config.data_dir, on_flag=on_flag, on_sighting=on_sighting, on_load=on_load,
        timezone=config.timezone,
    )
    relay = StatusRelay(bus)
    media = MediaGateway(
        config.media,
        on_sample=analytics.submit,
        on_status=relay.on_status,
        on_sample_lost=analytics.sample_lost,
        thumbnailer=analytics.thumbnailer,
    )
    wiring = CameraWiring(app[DISPATCH], media, analytics, demo_dir=config.data_dir / "demo")
    # every raised flag stored once; acknowledged only after it is stored
    intake = BusIntake(bus, Topic.FLAG_RAISED, "dispatch", FlagRaised, app[DISPATCH].record_flag)
    sightings = BusIntake(bus, Topic.ZONE_SIGHTING, "dispatch-sightings", ZoneSighting, app[DISPATCH].record_sighting)

    async def on_review(review: FlagReview) -> None:
        if review.status == "dismissed":
            analytics.flag_dismissed(review.camera_id, review.id)

    # every hub process hears every review (a group of its own): the stay lives in the one that
    # analyses the camera
    reviews = BusIntake(bus, Topic.FLAG_REVIEWED, process_group("analytics-reviews"), FlagReview, on_review,
                        transient=True)
    app[ANALYTICS] = analytics
    app[MEDIA] = media
    app[WIRING] = wiring
    relay.start()
    await analytics.start()
    await media.start()
    await intake.start()
    await sightings.start()
    await reviews.start()
    try:
        await wiring.sync_all()
        yield
    finally:
        # reverse order; each step runs even if an earlier one failed
        errors: list[BaseException] = []
        for step in (reviews.stop, sightings.stop, intake.stop, media.stop, analytics.stop, relay.stop):
            try:
                await step()
            except Exception as exc:  # collected, logged, shutdown goes on
                errors.append(exc)
                log.exception("error while stopping %s", step)
        if errors:
            log.warning("%d error(s) during shutdown", len(errors))
