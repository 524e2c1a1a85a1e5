"""Conference terminals over SIP: register them, dial them, watch them over WHEP like a camera.

- POST /api/v1/terminals {name, sip_uri, region} (admin, commander) → 201 Terminal;
- GET /api/v1/terminals, GET /api/v1/terminals/{id} (staff) → Terminal with its live `state`;
- POST /api/v1/terminals/{id}/dial (admin, commander): the hub calls the terminal (SIP INVITE from
  its own user agent) and relays its H.264 + Opus/G.711 RTP as received; → Terminal (state online);
- POST /api/v1/terminals/{id}/hangup → Terminal (state idle);
- POST /whep/terminals/{id} (staff): view the terminal; DELETE /whep/sessions/{sid} ends viewing;
- GET /api/v1/sip (staff): the hub's own SIP URI, which registered terminals may call: the hub
  accepts a call sent from a registered terminal's host:port, and refuses others (403).
A dialled terminal is a publisher named `terminal-{id}` (GET /api/v1/publishers lists it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiosipua import IncomingCall
from pydantic import BaseModel, ConfigDict, Field

from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import int_param, json_reply, read_body, user_of
from fusionhub.console.keys import CALLS, DISPATCH, MEDIA, TERMINAL_BRIDGE, WHEP_OWNERS
from fusionhub.console.whip import _offer, _sdp_reply
from fusionhub.media.publishers import PublisherRegistry, UnknownPublisher
from fusionhub.media.sip import SipError, SipSession
from fusionhub.media.sipagent import SipAgent

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

SIP_AGENT: web.AppKey[SipAgent] = web.AppKey("sip_agent")
WRITERS = ("admin", "commander")
VIEWERS = ("admin", "commander", "duty")


class NewTerminal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=48, description="unique; letters, digits, _ . -")
    sip_uri: str = Field(min_length=8, max_length=256, description="sip:user@IPv4[:port]")
    region: str = Field(min_length=1, max_length=128, description="the caller's region or one below it")


def publisher_name(terminal_id: int) -> str:
    """The publisher a dialled terminal becomes."""
    return f"terminal-{terminal_id}"


def _live(publishers: PublisherRegistry, terminal: dict[str, Any]) -> dict[str, Any]:
    try:
        pub = publishers.get(publisher_name(int(terminal["id"])))
    except UnknownPublisher:
        return {**terminal, "state": "idle", "publisher": None, "source_id": None, "has_audio": False}
    return {**terminal, "state": pub.status.state, "publisher": pub.name, "source_id": pub.source_id,
            "has_audio": pub.status.has_audio}


@routes.post("/api/v1/terminals")
async def create_terminal(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, WRITERS)
    body = await read_body(request, NewTerminal)
    terminal = await request.app[DISPATCH].create_terminal(user, body.name, body.sip_uri, body.region)
    return json_reply(_live(request.app[MEDIA].publishers, terminal), status=201)


@routes.get("/api/v1/terminals")
async def list_terminals(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, VIEWERS)
    pubs = request.app[MEDIA].publishers
    return json_reply([_live(pubs, t) for t in await request.app[DISPATCH].list_terminals(user)])


@routes.get("/api/v1/terminals/{terminal_id}")
async def get_terminal(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, VIEWERS)
    terminal = await request.app[DISPATCH].get_terminal(user, int_param(request, "terminal_id"))
    return json_reply(_live(request.app[MEDIA].publishers, terminal))


@routes.post("/api/v1/terminals/{terminal_id}/dial")
async def dial(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, WRITERS)
    terminal = await request.app[DISPATCH].get_terminal(user, int_param(request, "terminal_id"))
    pubs = request.app[MEDIA].publishers
    factory = functools.partial(SipSession, agent=request.app[SIP_AGENT])
    try:
        await pubs.publish(
            publisher_name(int(terminal["id"])), terminal["sip_uri"], user_id=int(user["id"]), region=terminal["region"],
            session_factory=factory,
        )
    except SipError as exc:
        raise ApiError(502, "sip_failed", str(exc)) from None
    log.info("terminal %s dialled by user %s", terminal["id"], user["id"])
    await join_calls(request.app, int(terminal["id"]))
    return json_reply(_live(pubs, terminal))


@routes.post("/api/v1/terminals/{terminal_id}/hangup")
async def hang_up(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, WRITERS)
    terminal = await request.app[DISPATCH].get_terminal(user, int_param(request, "terminal_id"))
    pubs = request.app[MEDIA].publishers
    try:
        await pubs.get(publisher_name(int(terminal["id"]))).session.close()
    except UnknownPublisher:
        raise ApiError(409, "conflict", "the terminal is not in a call") from None
    return json_reply(_live(pubs, terminal))


@routes.post("/whep/terminals/{terminal_id}")
async def whep_terminal(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, VIEWERS)
    terminal = await request.app[DISPATCH].get_terminal(user, int_param(request, "terminal_id"))
    offer = await _offer(request, kind="view")
    try:
        answer, session_id = await request.app[MEDIA].whep_offer_publisher(publisher_name(int(terminal["id"])), offer)
    except UnknownPublisher:
        raise ApiError(409, "not_connected", "the terminal is not in a call: dial it first") from None
    request.app[WHEP_OWNERS][session_id] = int(user["id"])
    return _sdp_reply(answer, f"/whep/sessions/{session_id}")


@routes.get("/api/v1/sip")
async def sip_address(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, VIEWERS)
    host, port = request.app[SIP_AGENT].address
    return json_reply({"sip_uri": f"sip:fusionhub@{host}:{port}", "transport": "udp"})


async def join_calls(app: web.Application, terminal_id: int) -> None:
    """A terminal just connected: the video calls it was added to before (shown beside the call
    while it was not connected) now send it their picture and voices."""
    calls, bridge = app.get(CALLS), app.get(TERMINAL_BRIDGE)
    if calls is None or bridge is None:
        return
    for call in calls.with_terminal(terminal_id):
        try:
            await bridge.refresh(call)
        except asyncio.CancelledError:
            raise
        except Exception:  # the terminal is connected all the same; it is still shown in the call
            log.exception("terminal %s: could not join call %s", terminal_id, call.call_id[:6])


class _Incoming:
    """A terminal calls the hub: accept it as its publisher when registered, refuse it otherwise."""

    def __init__(self, app: web.Application, agent: SipAgent) -> None:
        self._app = app
        self._agent = agent
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, call: IncomingCall) -> None:
        if len(self._tasks) >= 16:  # a flood of INVITEs: refuse rather than queue
            call.reject(503, "Service Unavailable")
            return
        task = asyncio.get_running_loop().create_task(self._take(call), name="sip-incoming")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, call: IncomingCall) -> None:
        # the packet's source address, not the From header (anyone can write any From)
        host, port = call.source_addr
        terminal = await self._app[DISPATCH].find_terminal(host, port)
        if terminal is None:
            log.info("SIP call from an unregistered terminal refused")
            call.reject(403, "Forbidden")
            return
        factory = functools.partial(SipSession, agent=self._agent, incoming=call)
        try:
            await self._app[MEDIA].publishers.publish(
                publisher_name(int(terminal["id"])), "", user_id=int(terminal["created_by"] or 0),
                region=terminal["region"], session_factory=factory,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # busy (already in a call), hub full, no H.264: the caller hears a refusal
            log.info("terminal %s calling: refused (%s)", terminal["id"], exc)
            try:
                call.reject(486, "Busy Here")  # unless the session already answered the refusal
            except Exception:
                log.debug("terminal %s: refusal not sent", terminal["id"], exc_info=True)
            return
        log.info("terminal %s called the hub; accepted", terminal["id"])
        await join_calls(self._app, int(terminal["id"]))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def terminals_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the hub's SIP user agent (listening from the start, for terminals that call);
    hangs up every terminal on stop."""
    agent = SipAgent(host="127.0.0.1")
    incoming = _Incoming(app, agent)
    agent.on_incoming = incoming
    await agent.start()
    app[SIP_AGENT] = agent
    try:
        yield
    finally:
        await incoming.stop()
        pubs = app[MEDIA].publishers
        for pub in pubs.list():
            if isinstance(pub.session, SipSession):
                try:
                    await pub.session.close()
                except Exception:
                    log.exception("terminal %s: error while hanging up", pub.name)
        await agent.stop()
