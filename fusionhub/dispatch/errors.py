"""Errors of the dispatch package: one base, narrow subclasses the API maps to HTTP codes."""

from __future__ import annotations


class DispatchError(Exception):
    """Base of every dispatch error: a machine `code` and a message a person understands."""

    code = "dispatch_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DispatchError):
    """No such record, or it lies outside the viewer's region (existence is not leaked)."""

    code = "not_found"


class Forbidden(DispatchError):
    """The viewer's role may not do this."""

    code = "forbidden"


class TransitionRefused(DispatchError):
    """The workflow does not allow this action from the case's current status."""

    code = "transition_refused"

    def __init__(self, message: str, *, current: str | None = None, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.current = current
        self.allowed = allowed


class Conflict(DispatchError):
    """Someone else changed the record at the same time; the message names its current status."""

    code = "conflict"

    def __init__(self, message: str, *, current: str | None = None) -> None:
        super().__init__(message)
        self.current = current


class AlreadyReviewed(DispatchError):
    """The flag was confirmed or dismissed already."""

    code = "already_reviewed"


class Invalid(DispatchError, ValueError):
    """Bad input; `field` names what is wrong.

    Also a ValueError so that event consumers treat an unusable event as malformed (drop it)
    instead of retrying it forever.
    """

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Duplicate(DispatchError):
    """A unique name is taken (e.g. a username)."""

    code = "duplicate"
