"""The review queue (flags), cases with their workflow actions, tasks and categories."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import (
    bool_query,
    decode_photo,
    file_reply,
    int_param,
    int_query,
    json_reply,
    read_body,
    user_of,
)
from fusionhub.console.keys import DISPATCH

routes = web.RouteTableDef()



class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(None, max_length=64)
    note: str | None = Field(None, max_length=2000)


class DismissBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class DispatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team_id: int | None = Field(None, description="omitted: the auto-dispatch rules choose")
    user_id: int | None = Field(None, description="a field member of the team: one click to the person")


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)


class RequiredNoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000)


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000)
    photo: str | None = Field(None, max_length=8 * 1024 * 1024, description="data URL, JPEG or PNG")


# -- flags ------------------------------------------------------------------------------------

@routes.get("/api/v1/flags")
async def list_flags(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty", "commander", "admin"])
    status = request.query.get("status")
    if status not in (None, "pending", "confirmed", "dismissed"):
        raise ApiError(422, "invalid_input", "status: one of pending, confirmed, dismissed")
    return json_reply(await request.app[DISPATCH].list_flags(user, status))


@routes.get("/api/v1/flags/{flag_id}")
async def get_flag(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty", "commander", "admin"])
    return json_reply(await request.app[DISPATCH].get_flag(user, request.match_info["flag_id"]))


@routes.get("/api/v1/flags/{flag_id}/evidence.jpg")
async def flag_evidence(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    require_role(user, ["duty", "commander", "admin"])
    path = await request.app[DISPATCH].flag_evidence_path(user, request.match_info["flag_id"])
    return file_reply(path, "image/jpeg")


@routes.post("/api/v1/flags/{flag_id}/confirm")
async def confirm_flag(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty"])
    body = await read_body(request, ConfirmBody)
    flag, case = await request.app[DISPATCH].confirm_flag(
        user, request.match_info["flag_id"], category=body.category, note=body.note
    )
    return json_reply({"flag": flag, "case": case}, status=201)


@routes.post("/api/v1/flags/{flag_id}/dismiss")
async def dismiss_flag(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty"])
    body = await read_body(request, DismissBody)
    reason = body.reason.strip()
    if not reason:
        raise ApiError(422, "invalid_input", "reason: say why the flag is dismissed")
    return json_reply(await request.app[DISPATCH].dismiss_flag(user, request.match_info["flag_id"], reason))


# -- cases ------------------------------------------------------------------------------------

@routes.get("/api/v1/cases")
async def list_cases(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_reply(
        await request.app[DISPATCH].list_cases(
            user,
            request.query.get("status"),
            overdue=bool_query(request, "overdue"),
            limit=int_query(request, "limit", 500),
        )
    )


@routes.get("/api/v1/cases/{case_id}")
async def get_case(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_reply(await request.app[DISPATCH].get_case(user, int_param(request, "case_id")))


@routes.post("/api/v1/cases/{case_id}/dispatch")
async def dispatch_case(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["commander"])
    body = await read_body(request, DispatchBody)
    return json_reply(
        await request.app[DISPATCH].dispatch_case(
            user, int_param(request, "case_id"), body.team_id, user_id=body.user_id
        )
    )


@routes.post("/api/v1/cases/{case_id}/acknowledge")
async def acknowledge_case(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["field"])
    await read_body(request, NoteBody)
    return json_reply(await request.app[DISPATCH].acknowledge_case(user, int_param(request, "case_id")))


@routes.post("/api/v1/cases/{case_id}/report")
async def report_case(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["field"])
    body = await read_body(request, ReportBody)
    photo, photo_type = decode_photo(body.photo) if body.photo else (None, None)
    return json_reply(
        await request.app[DISPATCH].report_handled(
            user, int_param(request, "case_id"), body.note, photo=photo, photo_type=photo_type
        )
    )


@routes.post("/api/v1/cases/{case_id}/verify")
async def verify_case(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty"])
    body = await read_body(request, NoteBody)
    return json_reply(await request.app[DISPATCH].verify_case(user, int_param(request, "case_id"), note=body.note))


@routes.post("/api/v1/cases/{case_id}/reject")
async def reject_case(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty"])
    body = await read_body(request, RequiredNoteBody)
    return json_reply(await request.app[DISPATCH].reject_case(user, int_param(request, "case_id"), body.note))


@routes.get("/api/v1/cases/{case_id}/attachments/{att_id}")
async def case_attachment(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    path, content_type = await request.app[DISPATCH].attachment_path(
        user, int_param(request, "case_id"), int_param(request, "att_id")
    )
    return file_reply(path, content_type)


# -- tasks and categories ----------------------------------------------------------------------

@routes.get("/api/v1/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    return json_reply(
        await request.app[DISPATCH].list_tasks(
            user_of(request), open_only=bool_query(request, "open"), limit=int_query(request, "limit", 500)
        )
    )


@routes.get("/api/v1/categories")
async def list_categories(request: web.Request) -> web.Response:
    user_of(request)
    return json_reply([c.as_dict() for c in request.app[DISPATCH].catalog.current.categories()])
