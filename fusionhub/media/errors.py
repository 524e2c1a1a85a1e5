"""Errors raised by the media package: one base class, narrow subclasses."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every media error."""


class InvalidCameraUrl(MediaError, ValueError):
    """A camera URL is not an acceptable rtsp:// or rtsps:// URL (message never holds the password)."""


class UnknownCamera(MediaError, LookupError):
    """No source is registered for that camera id."""


class UnknownSession(MediaError, LookupError):
    """No viewer session has that id (already closed or never existed)."""


class CodecUnsupported(MediaError):
    """The source's codec cannot be relayed (only H.264 is)."""


class GatewayFull(MediaError):
    """The gateway has reached its limit of viewers or sources, or is too busy for one more now."""

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # what the API sends as Retry-After
