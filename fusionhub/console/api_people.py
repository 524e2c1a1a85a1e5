"""Login, the current user, users and teams."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from fusionhub import __version__
from fusionhub.console.auth import ROLES, require_role
from fusionhub.console.errors import ApiError
from fusionhub.console.http import json_reply, read_body, user_of
from fusionhub.console.keys import CONFIG, DISPATCH, SIGNER

routes = web.RouteTableDef()


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")
    region: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    display_name: str = Field(min_length=1, max_length=64)
    team_id: int | None = None


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginBody)
    user = await request.app[DISPATCH].authenticate(body.username, body.password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "wrong user name or password")
    token = request.app[SIGNER].issue(int(user["id"]))
    return json_reply({"token": token, "user": user})


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return json_reply(
        {
            "user": user_of(request),
            "hub": {
                "timezone": config.timezone,
                "default_lang": config.default_lang,
                "version": __version__,
            },
        }
    )


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    return json_reply(await request.app[DISPATCH].list_users(user))


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, ["admin"])
    body = await read_body(request, NewUser)
    created = await request.app[DISPATCH].create_user(
        body.username,
        body.password,
        body.role,
        body.region,
        body.display_name,
        team_id=body.team_id,
    )
    return json_reply(created, status=201)


@routes.get("/api/v1/teams")
async def list_teams(request: web.Request) -> web.Response:
    return json_reply(await request.app[DISPATCH].list_teams(user_of(request)))
