"""Camera URL checks and credential hygiene: a camera's password never reaches a log or a reply."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import SplitResult, unquote, urlsplit

from .errors import InvalidCameraUrl

_SCHEMES = frozenset({"rtsp", "rtsps"})
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
# scheme://userinfo@ inside free text. Userinfo runs to the LAST '@' before the host part ends
# ('/', '?', '#'), the way both FFmpeg (av_url_split) and urllib split it, so a password holding
# an unescaped '@' is hidden whole. It stops at whitespace and quotes, which FFmpeg wraps URLs in.
_USERINFO = re.compile(r"(?i)\b((?:rtsps?|https?)://)[^/?#\s'\"<>]*@")


def _split(url: str) -> SplitResult:
    """urlsplit, with a message that does not echo the url (it may hold a password)."""
    try:
        return urlsplit(url)
    except ValueError as exc:  # e.g. a malformed IPv6 literal
        raise InvalidCameraUrl(f"camera url cannot be parsed: {redact(str(exc))}") from None


def validate_camera_url(url: str) -> str:
    """Return `url` unchanged if it is an rtsp:// or rtsps:// URL with a host.

    Raises InvalidCameraUrl (message free of credentials) for any other scheme, a missing host,
    a bad port, or whitespace/control characters anywhere in the URL.
    """
    if not isinstance(url, str) or not url:
        raise InvalidCameraUrl("camera url is empty")
    if _FORBIDDEN.search(url):
        raise InvalidCameraUrl("camera url must not contain whitespace or control characters")
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        shown = f"'{scheme}'" if scheme else "none"
        raise InvalidCameraUrl(f"camera url scheme must be rtsp or rtsps, got {shown}")
    if not parts.hostname:
        raise InvalidCameraUrl("camera url has no host")
    try:
        parts.port  # noqa: B018 -- raises ValueError on a bad or out-of-range port
    except ValueError:
        raise InvalidCameraUrl("camera url has an invalid port") from None
    return url


def strip_credentials(url: str) -> tuple[str, bool]:
    """The url without its userinfo (safe to show or log), and whether it had any."""
    parts = _split(url)
    if "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl(), True


def with_credentials_of(url: str, main: str) -> str:
    """`url` (a camera's substream), given the main URL's user and password when it carries none
    and points at the same host and port: cameras serve both streams behind one login."""
    parts, main_parts = _split(url), _split(main)
    if "@" in parts.netloc or "@" not in main_parts.netloc:
        return url
    if (parts.hostname, parts.port) != (main_parts.hostname, main_parts.port):
        return url
    userinfo = main_parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()


def redact(text: str) -> str:
    """Replace the userinfo of every rtsp(s)/http(s) URL in `text` with `***@`."""
    return _USERINFO.sub(r"\1***@", text)


# Literal passwords shorter than this are not scrubbed from messages by value (a one-letter
# password would garble every log line); URLs are always redacted by structure.
_MIN_SCRUB_LEN = 4


def redactor(url: str) -> Callable[[str], str]:
    """A scrubber for messages about the camera at `url`: every URL's userinfo is redacted, and
    its password, as written and percent-decoded, is replaced wherever a message quotes it bare
    (FFmpeg and camera answers may)."""
    password = _split(url).password or ""
    secrets = tuple(s for s in {password, unquote(password)} if len(s) >= _MIN_SCRUB_LEN)

    def scrub(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return scrub
