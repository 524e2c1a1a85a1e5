"""Video calls from cases: a commander calls a field member or a team; the field page answers.

Routes (all need a login; parties only, except placing a call):
- POST /api/v1/cases/{id}/calls {user_id | team_id} → 201 the call (state ringing);
- GET /api/v1/calls (my live calls, ringing ones included) and GET /api/v1/calls/{call_id};
- POST /api/v1/calls/{call_id}/answer | /decline | /hangup;
- POST /api/v1/calls/{call_id}/publish (SDP offer) → 201 SDP answer: this party's camera + mic
  go to the hub over WHIP (H.264 + Opus, never transcoded);
- POST /api/v1/calls/{call_id}/view (SDP offer) → 201 SDP answer: WHEP of the other party
  (404 `not_publishing` until they publish: retry);
- POST /api/v1/calls/{call_id}/snapshot → 201: the latest keyframe of the field party's video
  as a JPEG "snapshot" attachment of the case, with a `call_snapshot` timeline entry;
- POST /api/v1/calls/{call_id}/feeds {camera_id | terminal_id}: show a camera or a conference
  terminal beside the call; every party views it with
  POST /api/v1/calls/{call_id}/feeds/{camera|terminal}/{id}/view (SDP offer) → 201 SDP answer.
  A dialled terminal sees the caller and hears the call (console/callbridge.py).
Each party's publisher is recorded as relayed (console/callrecording.py): when it ends, its MP4
becomes a "recording" attachment of the case with a `call_recording` timeline entry.
Each change is a `CallChanged` on the bus: the ring reaches the callees over the websocket,
dispatch writes `call_started` / `call_ended` into the case timeline (a BusIntake, in calls_ctx).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fusionhub.console.api_terminals import publisher_name as terminal_publisher
from fusionhub.console.auth import User, region_visible, require_role
from fusionhub.console.busintake import BusIntake
from fusionhub.console.callbridge import TerminalBridge
from fusionhub.console.callbridge import party_publisher as publisher_name
from fusionhub.console.callrecording import CallRecording
from fusionhub.console.errors import ApiError
from fusionhub.console.http import int_param, json_reply, read_body, user_of
from fusionhub.console.keys import (
    BUS,
    CALL_RECORDING,
    CALLS,
    CONFIG,
    DISPATCH,
    MEDIA,
    TERMINAL_BRIDGE,
    WHEP_OWNERS,
    WHIP_OWNERS,
)
from fusionhub.console.whip import _offer, _sdp_reply
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.publishers import UnknownPublisher
from fusionhub.signaling.calls import Call, CallBusy, CallError, CallRegistry, Party, UnknownCall
from fusionhub.signaling.messages import CallChanged, PublisherStatus, Topic, payload

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

CALLERS = ("commander", "duty")
RING_TIMEOUT_S = 45.0  # a call nobody answers ends as "missed"
MAX_CALLS = 64  # live calls the hub carries at once (each is two publishers and two viewers)


class PlaceCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int | None = Field(None, ge=1, description="the field member to call")
    team_id: int | None = Field(None, ge=1, description="or the team: every member rings, the first to answer talks")

    @model_validator(mode="after")
    def _one(self) -> PlaceCall:
        if (self.user_id is None) == (self.team_id is None):
            raise ValueError("give exactly one of user_id and team_id")
        return self


class AddFeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera_id: int | None = Field(None, ge=1, description="a camera of the caller's region")
    terminal_id: int | None = Field(None, ge=1, description="or a conference terminal of the caller's region")

    @model_validator(mode="after")
    def _one(self) -> AddFeed:
        if (self.camera_id is None) == (self.terminal_id is None):
            raise ValueError("give exactly one of camera_id and terminal_id")
        return self


def _party(user: User) -> Party:
    return Party(int(user["id"]), str(user.get("display_name") or user["username"])[:64])


def _call_error(exc: CallError) -> ApiError:
    if isinstance(exc, UnknownCall):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, CallBusy):
        return ApiError(409, "busy", str(exc))
    return ApiError(409, "conflict", str(exc))


def _call(request: web.Request, user: User) -> Call:
    try:
        return request.app[CALLS].get(request.match_info["call_id"], int(user["id"]))
    except CallError as exc:
        raise _call_error(exc) from None


async def _callees(dispatch: DispatchService, user: User, body: PlaceCall) -> tuple[list[Party], int | None]:
    if body.user_id is not None:
        callee = await dispatch.get_user(body.user_id)
        if callee is None or callee["role"] != "field" or not region_visible(user, callee["region"]):
            raise ApiError(422, "invalid_input", f"user_id: no field member {body.user_id} in your region")
        return [Party(int(callee["id"]), str(callee.get("display_name") or callee["username"])[:64])], None
    teams = [t for t in await dispatch.list_teams(user) if t["id"] == body.team_id]
    if not teams:
        raise ApiError(422, "invalid_input", f"team_id: no team {body.team_id} in your region")
    members = [m for m in teams[0].get("members", []) if m.get("role", "field") == "field"]
    if not members:
        raise ApiError(422, "invalid_input", f"team_id: team {body.team_id} has no members to call")
    return [Party(int(m["id"]), str(m.get("display_name") or m.get("username") or m["id"])[:64]) for m in members], body.team_id


@routes.post("/api/v1/cases/{case_id}/calls")
async def place_call(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, CALLERS)
    case = await request.app[DISPATCH].get_case(user, int_param(request, "case_id"))  # 404 outside the region
    body = await read_body(request, PlaceCall)
    callees, team_id = await _callees(request.app[DISPATCH], user, body)
    try:
        call = await request.app[CALLS].place(
            case_id=int(case["id"]), case_title=str(case["title"]), region=str(case["region"]),
            caller=_party(user), callees=callees, team_id=team_id,
        )
    except CallError as exc:
        raise _call_error(exc) from None
    return json_reply(call.public(), status=201)


@routes.get("/api/v1/calls")
async def my_calls(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_reply([c.public() for c in request.app[CALLS].list_for(int(user["id"]))])


@routes.get("/api/v1/calls/{call_id}")
async def get_call(request: web.Request) -> web.Response:
    return json_reply(_call(request, user_of(request)).public())


@routes.post("/api/v1/calls/{call_id}/answer")
async def answer_call(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        call = await request.app[CALLS].answer(request.match_info["call_id"], _party(user))
    except CallError as exc:
        raise _call_error(exc) from None
    _record(request.app, call, call.caller.user_id)  # the caller's camera may be live since the ring
    return json_reply(call.public())


def _record(app: web.Application, call: Call, user_id: int) -> None:
    """Record a party's publisher as relayed, from the answer on (one MP4 per party, attached to
    the case when the publisher ends); nothing when the party is not publishing yet."""
    name = publisher_name(call.call_id, user_id)
    try:
        outputs = app[MEDIA].publishers.get(name).outputs
    except UnknownPublisher:
        return
    app[CALL_RECORDING].record(call, user_id, name, outputs)


@routes.post("/api/v1/calls/{call_id}/decline")
async def decline_call(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        call = await request.app[CALLS].decline(request.match_info["call_id"], int(user["id"]))
    except CallError as exc:
        raise _call_error(exc) from None
    return json_reply(call.public())


@routes.post("/api/v1/calls/{call_id}/hangup")
async def hang_up(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        call = await request.app[CALLS].hang_up(request.match_info["call_id"], int(user["id"]))
    except CallError as exc:
        raise _call_error(exc) from None
    return json_reply(call.public())


@routes.post("/api/v1/calls/{call_id}/publish")
async def publish(request: web.Request) -> web.Response:
    user = user_of(request)
    call = _call(request, user)
    uid = int(user["id"])
    if uid not in call.party_ids():
        raise ApiError(409, "conflict", "answer the call before sending video")
    offer = await _offer(request, kind="publish")
    name = publisher_name(call.call_id, uid)
    answer, session_id = await request.app[MEDIA].whip_publish(name, offer, user_id=uid, region=call.region)
    if call.state == "ended":  # hung up while the answer was built
        await request.app[MEDIA].whip_delete(session_id)
        raise ApiError(404, "not_found", "the call has ended")
    request.app[WHIP_OWNERS][session_id] = uid
    if call.state == "active":
        _record(request.app, call, uid)
        await request.app[TERMINAL_BRIDGE].refresh(call)  # a terminal in the call hears this party too
    return _sdp_reply(answer, f"/whip/sessions/{session_id}")


@routes.post("/api/v1/calls/{call_id}/view")
async def view_peer(request: web.Request) -> web.Response:
    user = user_of(request)
    call = _call(request, user)
    peer = call.peer_of(int(user["id"]))
    if peer is None:
        raise ApiError(409, "conflict", "the call is not answered yet")
    offer = await _offer(request, kind="view")
    try:
        answer, session_id = await request.app[MEDIA].whep_offer_publisher(publisher_name(call.call_id, peer.user_id), offer)
    except UnknownPublisher:
        raise ApiError(404, "not_publishing", "the other party is not sending video yet; try again shortly") from None
    request.app[WHEP_OWNERS][session_id] = int(user["id"])
    return _sdp_reply(answer, f"/whep/sessions/{session_id}")


@routes.post("/api/v1/calls/{call_id}/snapshot")
async def snapshot(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, CALLERS)
    call = _call(request, user)
    field = call.callee if call.callee is not None and call.callee.user_id != int(user["id"]) else None
    if field is None:
        raise ApiError(409, "conflict", "the call is not answered yet")
    try:
        pub = request.app[MEDIA].publishers.get(publisher_name(call.call_id, field.user_id))
    except UnknownPublisher:
        raise ApiError(409, "no_picture", "the field member is not sending video yet") from None
    jpeg = await asyncio.to_thread(pub.source.latest_keyframe_jpeg)  # decodes nothing new: the sampled keyframe
    if jpeg is None:
        raise ApiError(409, "no_picture", "no picture from the field member yet; try again in a moment")
    stored = await request.app[DISPATCH].add_call_snapshot(user, call.case_id, call.call_id, jpeg, source=field.name)
    return json_reply({**stored, "call_id": call.call_id, "case_id": call.case_id}, status=201)


@routes.post("/api/v1/calls/{call_id}/feeds")
async def add_feed(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, CALLERS)
    body = await read_body(request, AddFeed)
    if body.camera_id is not None:
        kind, feed_id = "camera", body.camera_id
        await request.app[DISPATCH].get_camera(user, feed_id)  # 404 outside the region
    else:
        kind, feed_id = "terminal", int(body.terminal_id or 0)
        await request.app[DISPATCH].get_terminal(user, feed_id)
    try:
        call = await request.app[CALLS].add_feed(request.match_info["call_id"], int(user["id"]), kind, feed_id)
    except CallError as exc:
        raise _call_error(exc) from None
    if kind == "terminal":
        await request.app[TERMINAL_BRIDGE].refresh(call)  # it sees the caller and hears the call
    return json_reply(call.public())


@routes.post("/api/v1/calls/{call_id}/feeds/{kind}/{feed_id}/view")
async def view_feed(request: web.Request) -> web.Response:
    """A party of the call views (and hears) a camera or terminal the caller added to it: the field
    member sees what the commander shows, and a conference room they talk with."""
    user = user_of(request)
    call = _call(request, user)
    uid = int(user["id"])
    if uid not in call.party_ids():
        raise ApiError(409, "conflict", "answer the call before viewing its feeds")
    kind, feed_id = request.match_info["kind"], int_param(request, "feed_id")
    feeds = {"camera": call.camera_ids, "terminal": call.terminal_ids}.get(kind)
    if feeds is None or feed_id not in feeds:
        raise ApiError(404, "not_found", f"no {kind} {feed_id} in this call")
    offer = await _offer(request, kind="view")
    media = request.app[MEDIA]
    if kind == "camera":
        answer, session_id = await media.whep_offer(feed_id, offer)
    else:
        try:
            answer, session_id = await media.whep_offer_publisher(terminal_publisher(feed_id), offer)
        except UnknownPublisher:
            raise ApiError(409, "not_connected", "the terminal is not in a call: dial it first") from None
    request.app[WHEP_OWNERS][session_id] = uid
    return _sdp_reply(answer, f"/whep/sessions/{session_id}")


async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the call registry and its timeline intake (after media: calls close media)."""
    bus = app[BUS]
    media = app[MEDIA]
    ending: set[asyncio.Task[None]] = set()

    async def on_change(msg: CallChanged) -> None:
        await bus.publish(Topic.CALL_CHANGED, payload(msg))

    async def on_end(call: Call) -> None:
        await bridge.end(call.call_id)
        for uid in call.party_ids():
            try:
                pub = media.publishers.get(publisher_name(call.call_id, uid))
            except UnknownPublisher:
                continue
            await media.whip_delete(pub.session.session_id)  # its viewers close with it

    bridge = TerminalBridge(media)
    app[TERMINAL_BRIDGE] = bridge
    registry = CallRegistry(ring_timeout_s=RING_TIMEOUT_S, max_calls=MAX_CALLS, on_change=on_change, on_end=on_end)

    def publisher_changed(status: PublisherStatus) -> None:
        # a party's phone or console went away (closed tab, lost network): the call is over
        if status.state != "offline" or not status.name.startswith("call-"):
            return
        call_id = status.name.split("-")[1]
        try:
            call = registry.get(call_id)
        except UnknownCall:
            return
        if call.state == "active":
            task = asyncio.get_running_loop().create_task(registry.end_for_user(status.user_id, "lost"))
            ending.add(task)
            task.add_done_callback(ending.discard)

    media.publishers.add_listener(publisher_changed)
    recording = CallRecording(bus, app[DISPATCH], app[CONFIG].data_dir, app[CONFIG].media.call_recording)
    await recording.start()
    app[CALL_RECORDING] = recording
    intake = BusIntake(bus, Topic.CALL_CHANGED, "dispatch-calls", CallChanged, app[DISPATCH].record_call)
    await intake.start()
    app[CALLS] = registry
    try:
        yield
    finally:
        try:
            await registry.stop()
        except Exception:
            log.exception("error while ending the calls")
        await asyncio.gather(*ending, return_exceptions=True)
        await bridge.close()
        await recording.stop()  # after the publishers went: each file is finished and reported
        await intake.stop()


def call_visible(user: User, data: dict[str, Any]) -> bool:
    """Websocket filter for CALL_CHANGED: the parties and the rung callees see it; staff of the
    case's region see it too (a call board)."""
    uid = user["id"]
    if uid in data.get("ring_user_ids", []) or any(p.get("user_id") == uid for p in data.get("participants", [])):
        return True
    return user["role"] in ("commander", "duty", "admin") and region_visible(user, data.get("region"))
