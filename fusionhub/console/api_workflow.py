"""REST routes of the workflow's branches: intake, filing, return, progress, extensions, suspension,
return visit, the printable export; the category catalog, auto-dispatch rules and the working calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from fusionhub.console.auth import require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import decode_photo, int_param, json_reply, read_body, user_of
from fusionhub.console.keys import DISPATCH
from fusionhub.dispatch.calendar import parse_day
from fusionhub.dispatch.worktime import Limit, LimitType

routes = web.RouteTableDef()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateCaseBody(_Body):
    source: Literal["manual", "hotline", "patrol"]
    category: str = Field(min_length=1, max_length=64)
    location: str = Field(min_length=1, max_length=512)
    description: str | None = Field(None, max_length=4000)
    title: str | None = Field(None, max_length=256)
    region: str | None = Field(None, max_length=128)
    contact: str | None = Field(None, max_length=128, description="hotline caller's name / number")
    photo: str | None = Field(None, max_length=8 * 1024 * 1024, description="data URL, JPEG or PNG")


class FileBody(_Body):
    category: str | None = Field(None, max_length=64)
    note: str | None = Field(None, max_length=2000)


class ReasonBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class NoteBody(_Body):
    note: str | None = Field(None, max_length=2000)


class RequiredNoteBody(_Body):
    note: str = Field(min_length=1, max_length=2000)


class ExtensionBody(_Body):
    amount: float = Field(gt=0, le=10_000, description="in the stage limit's units unless limit_type says")
    reason: str = Field(min_length=1, max_length=2000)
    limit_type: LimitType | None = None


class ApproveBody(_Body):
    note: str | None = Field(None, max_length=2000)
    amount: float | None = Field(None, gt=0, le=10_000, description="grant a different amount than asked")


class EvaluateBody(_Body):
    score: int = Field(ge=1, le=5, description="satisfaction: 1 (bad) .. 5 (very good)")
    note: str | None = Field(None, max_length=2000)


class OverrideBody(_Body):
    kind: Literal["holiday", "workday"]
    note: str | None = Field(None, max_length=256)


# -- intake and the branches ---------------------------------------------------------------------

@routes.post("/api/v1/cases")
async def create_case(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["duty", "commander", "field"])
    body = await read_body(request, CreateCaseBody)
    photo, photo_type = decode_photo(body.photo) if body.photo else (None, None)
    case = await request.app[DISPATCH].create_case(
        user,
        source=body.source,
        category=body.category,
        location=body.location,
        description=body.description,
        title=body.title,
        region=body.region,
        contact=body.contact,
        photo=photo,
        photo_type=photo_type,
    )
    return json_reply(case, status=201)


@routes.post("/api/v1/cases/{case_id}/file")
async def file_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, FileBody)
    return json_reply(
        await request.app[DISPATCH].file_case(user, int_param(request, "case_id"), category=body.category, note=body.note)
    )


@routes.post("/api/v1/cases/{case_id}/refuse")
async def refuse_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, ReasonBody)
    return json_reply(await request.app[DISPATCH].refuse_case(user, int_param(request, "case_id"), body.reason))


@routes.post("/api/v1/cases/{case_id}/return")
async def return_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, ReasonBody)
    return json_reply(await request.app[DISPATCH].return_case(user, int_param(request, "case_id"), body.reason))


@routes.post("/api/v1/cases/{case_id}/progress")
async def progress_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, RequiredNoteBody)
    return json_reply(await request.app[DISPATCH].progress_case(user, int_param(request, "case_id"), body.note))


@routes.post("/api/v1/cases/{case_id}/extension")
async def request_extension(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, ExtensionBody)
    return json_reply(
        await request.app[DISPATCH].request_extension(
            user, int_param(request, "case_id"), body.amount, body.reason, limit_type=body.limit_type
        )
    )


@routes.post("/api/v1/cases/{case_id}/extension/approve")
async def approve_extension(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, ApproveBody)
    return json_reply(
        await request.app[DISPATCH].approve_extension(user, int_param(request, "case_id"), note=body.note, amount=body.amount)
    )


@routes.post("/api/v1/cases/{case_id}/extension/refuse")
async def refuse_extension(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, ReasonBody)
    return json_reply(await request.app[DISPATCH].refuse_extension(user, int_param(request, "case_id"), body.reason))


@routes.post("/api/v1/cases/{case_id}/suspend")
async def suspend_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, ReasonBody)
    return json_reply(await request.app[DISPATCH].suspend_case(user, int_param(request, "case_id"), body.reason))


@routes.post("/api/v1/cases/{case_id}/resume")
async def resume_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, NoteBody)
    return json_reply(await request.app[DISPATCH].resume_case(user, int_param(request, "case_id"), note=body.note))


@routes.post("/api/v1/cases/{case_id}/evaluate")
async def evaluate_case(request: web.Request) -> web.Response:
    user = user_of(request)
    body = await read_body(request, EvaluateBody)
    return json_reply(
        await request.app[DISPATCH].evaluate_case(user, int_param(request, "case_id"), body.score, note=body.note)
    )


@routes.get("/api/v1/cases/{case_id}/export.html")
async def export_case(request: web.Request) -> web.Response:
    user = user_of(request)
    case_id = int_param(request, "case_id")
    page = await request.app[DISPATCH].export_case(user, case_id)
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="case-{case_id}.html"',
            # self-contained: inline styles and embedded pictures only, no script, nothing fetched
            "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
            "Cache-Control": "no-store",
        },
    )


# -- the category catalog ------------------------------------------------------------------------

@routes.get("/api/v1/categories/catalog")
async def get_catalog(request: web.Request) -> web.Response:
    user_of(request)
    return json_reply(request.app[DISPATCH].catalog.current.as_dict())


@routes.put("/api/v1/categories")
async def put_catalog(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    try:
        raw: Any = await request.json()
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from exc
    catalog = await request.app[DISPATCH].catalog.replace(raw)
    return json_reply([c.as_dict() for c in catalog.categories()])


# -- auto-dispatch rules -----------------------------------------------------------------------

@routes.get("/api/v1/dispatch-rules")
async def list_rules(request: web.Request) -> web.Response:
    return json_reply(await request.app[DISPATCH].list_dispatch_rules(user_of(request)))


@routes.put("/api/v1/dispatch-rules")
async def put_rules(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    try:
        raw: Any = await request.json()
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from exc
    if not isinstance(raw, list):
        raise ApiError(422, "invalid_input", "rules: the body must be a JSON list of rules")
    return json_reply(await request.app[DISPATCH].replace_dispatch_rules(user, raw))


# -- the working calendar ------------------------------------------------------------------------

@routes.get("/api/v1/calendar")
async def calendar_days(request: web.Request) -> web.Response:
    user = user_of(request)
    start = parse_day(request.query.get("from", ""), "from")
    end = parse_day(request.query.get("to", ""), "to")
    return json_reply(await request.app[DISPATCH].calendar_days(user, start, end))


@routes.get("/api/v1/calendar/deadline")
async def preview_deadline(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        start = datetime.fromtimestamp(float(request.query["start"]), UTC)
        limit = Limit(request.query["type"], float(request.query["amount"]))  # type: ignore[arg-type]
    except (KeyError, ValueError, OverflowError, OSError) as exc:
        raise ApiError(422, "invalid_input", f"start (epoch seconds), type and amount (> 0) are needed: {exc}") from exc
    return json_reply(await request.app[DISPATCH].preview_deadline(user, start, limit))


@routes.get("/api/v1/calendar/overrides")
async def list_overrides(request: web.Request) -> web.Response:
    return json_reply(await request.app[DISPATCH].list_calendar_overrides(user_of(request)))


@routes.put("/api/v1/calendar/overrides/{day}")
async def put_override(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    day = parse_day(request.match_info["day"])
    body = await read_body(request, OverrideBody)
    return json_reply(await request.app[DISPATCH].set_calendar_override(user, day, body.kind, body.note))


@routes.delete("/api/v1/calendar/overrides/{day}")
async def delete_override(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    await request.app[DISPATCH].delete_calendar_override(user, parse_day(request.match_info["day"]))
    return web.Response(status=204)
