"""API errors: every failure becomes an HTTP status plus {"error": {"code", "message"}}."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy.exc
from aiohttp import web

from fusionhub.dispatch import errors as dispatch_errors
from fusionhub.media import errors as media_errors
from fusionhub.media.publishers import InvalidPublisherName, PublisherBusy, UnknownPublisher
from fusionhub.media.whep import InvalidOffer

log = logging.getLogger(__name__)

DB_BUSY_RETRY_S = 2


class ApiError(Exception):
    """An error the API reports as is."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    """The JSON error body every route uses."""
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers or None
    )


def _dispatch_details(exc: dispatch_errors.DispatchError) -> dict[str, Any] | None:
    """A refused or conflicting workflow action says where the case is now and what it allows."""
    if isinstance(exc, dispatch_errors.TransitionRefused):
        return {"current": exc.current, "allowed": list(exc.allowed)}
    if isinstance(exc, dispatch_errors.Conflict):
        return {"current": exc.current}
    return None


_DISPATCH_STATUS: dict[type[Exception], int] = {
    dispatch_errors.NotFound: 404,
    dispatch_errors.Forbidden: 403,
    dispatch_errors.TransitionRefused: 409,
    dispatch_errors.Conflict: 409,
    dispatch_errors.AlreadyReviewed: 409,
    dispatch_errors.Duplicate: 409,
    dispatch_errors.Invalid: 422,
}

_MEDIA_ERRORS: dict[type[Exception], tuple[int, str]] = {
    InvalidOffer: (400, "invalid_sdp"),
    media_errors.InvalidCameraUrl: (422, "invalid_url"),
    media_errors.UnknownCamera: (404, "not_found"),
    media_errors.UnknownSession: (404, "not_found"),
    media_errors.CodecUnsupported: (406, "codec_unsupported"),
    media_errors.GatewayFull: (503, "hub_full"),
    UnknownPublisher: (404, "not_found"),
    PublisherBusy: (409, "conflict"),
    InvalidPublisherName: (422, "invalid_name"),
}


def to_response(exc: Exception) -> web.Response:
    """Map a package error to its HTTP reply."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message)
    if isinstance(exc, dispatch_errors.DispatchError):
        for cls, status in _DISPATCH_STATUS.items():
            if isinstance(exc, cls):
                details = _dispatch_details(exc)
                if details is not None:
                    body = {"error": {"code": exc.code, "message": str(exc), **details}}
                    return web.json_response(body, status=status)
                return error_response(status, exc.code, str(exc))
        return error_response(400, exc.code, str(exc))
    for mcls, (status, code) in _MEDIA_ERRORS.items():
        if isinstance(exc, mcls):
            retry = getattr(exc, "retry_after_s", 5)
            extra = {"Retry-After": str(retry)} if status == 503 else {}
            return error_response(status, code, str(exc), **extra)
    raise exc


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Package errors to JSON replies; unexpected ones logged and answered 500 without details."""
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith(("/api/", "/whep/", "/whip/")):
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            return error_response(exc.status, code, exc.reason or "request refused")
        raise
    except (ApiError, dispatch_errors.DispatchError, media_errors.MediaError) as exc:
        return to_response(exc)
    except sqlalchemy.exc.TimeoutError:
        # every pooled database connection stayed busy for the pool's timeout: an overload, not a bug
        log.warning("%s %s: no database connection came free in time", request.method, request.path)
        return error_response(
            503, "busy", "the hub's database connections are all in use; try again in a moment",
            **{"Retry-After": str(DB_BUSY_RETRY_S)},
        )
    except TimeoutError:
        log.warning("%s %s timed out", request.method, request.path)
        return error_response(504, "timeout", "the hub could not finish this in time; try again")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the hub hit an internal error; it is logged")
