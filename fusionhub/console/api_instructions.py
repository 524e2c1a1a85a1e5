"""One-click tasking: instructions from commanders to teams and named field users."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from fusionhub.console.auth import require_role
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


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=16, description="patrol, emergency or notice")
    text: str = Field(min_length=1, max_length=2000)
    deadline_at: float = Field(description="epoch seconds")
    team_ids: list[int] = Field(default_factory=list, max_length=200)
    user_ids: list[int] = Field(default_factory=list, max_length=200)
    case_id: int | None = None
    ack_within_min: int | None = Field(None, ge=1, le=1440)


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000)
    photo: str | None = Field(None, max_length=8 * 1024 * 1024, description="data URL, JPEG or PNG")


@routes.get("/api/v1/tasking/directory")
async def tasking_directory(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["commander", "duty"])
    return json_reply(await request.app[DISPATCH].tasking_directory(user))


@routes.get("/api/v1/instructions")
async def list_instructions(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_reply(
        await request.app[DISPATCH].list_instructions(
            user, limit=int_query(request, "limit", 100), open_only=bool_query(request, "open")
        )
    )


@routes.post("/api/v1/instructions")
async def send_instruction(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["commander"])
    body = await read_body(request, SendBody)
    instruction = await request.app[DISPATCH].create_instruction(
        user,
        kind=body.kind,
        text=body.text,
        deadline_at=body.deadline_at,
        team_ids=body.team_ids,
        user_ids=body.user_ids,
        case_id=body.case_id,
        ack_within_min=body.ack_within_min,
    )
    return json_reply(instruction, status=201)


@routes.get("/api/v1/instructions/{instruction_id}")
async def get_instruction(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_reply(await request.app[DISPATCH].get_instruction(user, int_param(request, "instruction_id")))


@routes.post("/api/v1/instructions/{instruction_id}/acknowledge")
async def acknowledge_instruction(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["field"])
    await read_body(request, EmptyBody)
    return json_reply(
        await request.app[DISPATCH].acknowledge_instruction(user, int_param(request, "instruction_id"))
    )


@routes.post("/api/v1/instructions/{instruction_id}/report")
async def report_instruction(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["field"])
    body = await read_body(request, AnswerBody)
    photo, photo_type = decode_photo(body.photo) if body.photo else (None, None)
    return json_reply(
        await request.app[DISPATCH].report_instruction(
            user, int_param(request, "instruction_id"), body.note, photo=photo, photo_type=photo_type
        )
    )


@routes.post("/api/v1/instructions/{instruction_id}/cancel")
async def cancel_instruction(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["commander"])
    await read_body(request, EmptyBody)
    return json_reply(await request.app[DISPATCH].cancel_instruction(user, int_param(request, "instruction_id")))


@routes.get("/api/v1/instructions/{instruction_id}/recipients/{recipient_id}/photo")
async def recipient_photo(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    path, content_type = await request.app[DISPATCH].instruction_photo_path(
        user, int_param(request, "instruction_id"), int_param(request, "recipient_id")
    )
    return file_reply(path, content_type)
