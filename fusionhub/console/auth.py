"""Login tokens (HMAC-signed, expiring) and the role/region rules every route applies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from fusionhub.console.errors import ApiError

User = dict[str, Any]

ROLES = ("admin", "commander", "duty", "field")


def load_or_create_secret(path: Path) -> bytes:
    """The signing key, created once (owner-only permissions) so tokens survive a restart."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks bearer tokens: `payload.signature`, payload = {uid, exp}."""

    def __init__(self, key: bytes, *, ttl_s: int) -> None:
        self._key = key
        self._ttl_s = ttl_s

    def issue(self, user_id: int, *, now: float | None = None) -> str:
        exp = int((now if now is not None else time.time()) + self._ttl_s)
        body = _b64(json.dumps({"uid": user_id, "exp": exp}, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, *, now: float | None = None) -> int | None:
        """The user id of a valid, unexpired token; None otherwise."""
        body, _, sig = token.partition(".")
        if not body or not sig or not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            claims = json.loads(_unb64(body))
            uid, exp = int(claims["uid"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if exp < (now if now is not None else time.time()):
            return None
        return uid

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:24])


def bearer_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer …`, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def require_role(user: User, roles: Iterable[str]) -> None:
    """403 unless the user has one of the roles."""
    allowed = tuple(roles)
    if user["role"] not in allowed:
        raise ApiError(
            403, "forbidden", f"this needs the role {' or '.join(allowed)}; you are {user['role']}"
        )


def region_visible(user: User, region: str | None) -> bool:
    """A user sees their own region and every region below it."""
    if region is None:
        return False
    mine = user["region"]
    return region == mine or region.startswith(mine + ".")
