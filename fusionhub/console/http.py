"""Request helpers shared by the API modules: the logged-in user, validated JSON bodies, ids."""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from fusionhub.console.auth import User
from fusionhub.console.errors import ApiError

M = TypeVar("M", bound=BaseModel)

MAX_PHOTO_BYTES = 5 * 1024 * 1024
_DATA_URL = re.compile(r"^data:(image/(?:jpeg|png));base64,(.+)$", re.DOTALL)

USER_KEY: web.RequestKey[User] = web.RequestKey("user")


def user_of(request: web.Request) -> User:
    """The authenticated user (the auth middleware put it there)."""
    user: User | None = request.get(USER_KEY)
    if user is None:
        raise ApiError(401, "unauthenticated", "log in first")
    return user


async def read_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated against a model; 400/422 with the field that is wrong."""
    if request.content_length == 0 or not request.can_read_body:
        raw: Any = {}
    else:
        try:
            raw = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(422, "invalid_input", f"{field}: {err['msg']}") from exc


def int_param(request: web.Request, name: str) -> int:
    """A numeric path parameter; 404 when it is not a number (no such record)."""
    try:
        return int(request.match_info[name])
    except (KeyError, ValueError) as exc:
        raise ApiError(404, "not_found", f"no {name.removesuffix('_id')} {request.match_info.get(name)!r}") from exc


def json_reply(data: Any, status: int = 200) -> web.Response:
    """A JSON reply."""
    return web.json_response(data, status=status)


def int_query(request: web.Request, name: str, default: int) -> int:
    """A numeric query parameter (default when absent); 422 when it is not a number."""
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", f"{name}: a whole number") from exc


def bool_query(request: web.Request, name: str) -> bool:
    """A yes/no query parameter: 1/true or 0/false (absent: false); 422 otherwise."""
    raw = request.query.get(name, "0").lower()
    if raw not in ("0", "1", "true", "false"):
        raise ApiError(422, "invalid_input", f"{name}: 1 or 0")
    return raw in ("1", "true")


def file_reply(path: Path, content_type: str) -> web.FileResponse:
    """A stored file (evidence, photo) for a logged-in user: private caching only."""
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": "private, max-age=3600"})


def decode_photo(data_url: str) -> tuple[bytes, str]:
    """A photo sent as a data URL: (bytes, content type); 422/413 for anything else."""
    match = _DATA_URL.match(data_url)
    if match is None:
        raise ApiError(422, "invalid_input", "photo: must be a JPEG or PNG data URL")
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "invalid_input", "photo: the base64 data is damaged") from exc
    if len(raw) > MAX_PHOTO_BYTES:
        raise ApiError(413, "too_large", "photo: larger than 5 MB")
    return raw, match.group(1)
