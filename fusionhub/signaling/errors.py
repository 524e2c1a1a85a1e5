"""Errors raised by the signaling package: one base class, narrow documented subclasses."""

from __future__ import annotations


class SignalingError(Exception):
    """Base class of every error the signaling package raises on purpose."""


class BusClosed(SignalingError):
    """The bus (or subscription) was closed: nothing more can be published or read through it."""


class BusUnavailable(SignalingError):
    """The bus backend (Redis) could not be reached within the configured time; nothing was lost
    on our side, the caller decides whether to retry."""


class EventNotSerializable(SignalingError):
    """Event data must be JSON (so the same code runs on the in-process bus and on Redis)."""


class ProtocolError(SignalingError):
    """A websocket client sent something the protocol does not allow (answered with an `error`
    envelope, never raised out of the connection)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
