"""Camera URL validation and credential redaction (pure logic)."""

from __future__ import annotations

import pytest

from fusionhub.media.errors import InvalidCameraUrl, MediaError
from fusionhub.media.urls import redact, strip_credentials, validate_camera_url, with_credentials_of

SECRET = "Sup3r-S3cret"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1/cam",
        "https://cam.example/stream",
        "/var/clips/cam.mp4",
        "cam.mp4",
        "",
        "rtsp://",
        "rtsp:///path-only",
        "rtsp://:554/x",
        "rtsp://host/with space",
        "rtsp://host/\nnext",
        "rtsp://host/\x00",
        "rtsp://host:99999/x",
        "rtsp://host:port/x",
        "udp://127.0.0.1:1234",
    ],
)
def test_rejects_anything_but_an_rtsp_url_with_a_host(url: str) -> None:
    with pytest.raises(InvalidCameraUrl):
        validate_camera_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:8554/cam",
        "rtsps://cam.example/live?channel=1",
        "RTSP://Cam.Example/stream1",
        f"rtsp://admin:{SECRET}@10.0.0.5:554/Streaming/Channels/101",
        "rtsp://[::1]:8554/cam",
    ],
)
def test_accepts_rtsp_and_rtsps(url: str) -> None:
    assert validate_camera_url(url) == url


def test_invalid_url_error_never_echoes_the_password() -> None:
    for url in (f"http://admin:{SECRET}@cam/x", f"rtsp://admin:{SECRET}@/x", f"rtsp://u:{SECRET}@h:bad/x"):
        with pytest.raises(InvalidCameraUrl) as info:
            validate_camera_url(url)
        assert SECRET not in str(info.value)
        assert isinstance(info.value, MediaError)


def test_strip_credentials() -> None:
    assert strip_credentials(f"rtsp://admin:{SECRET}@10.0.0.5:554/live?x=1") == (
        "rtsp://10.0.0.5:554/live?x=1",
        True,
    )
    assert strip_credentials("rtsp://10.0.0.5/live") == ("rtsp://10.0.0.5/live", False)
    # A password holding '@' (not percent-encoded): the host is after the LAST '@'.
    assert strip_credentials("rtsp://admin:p@ss@cam:554/x") == ("rtsp://cam:554/x", True)
    assert strip_credentials("rtsp://user@cam/x") == ("rtsp://cam/x", True)


@pytest.mark.parametrize(
    "message",
    [
        # what FFmpeg/PyAV errors look like: the URL is echoed in quotes
        f"[Errno 111] Connection refused: 'rtsp://admin:{SECRET}@127.0.0.1:8554/cam'",
        f"Server returned 401 Unauthorized (authorization failed): 'rtsps://admin:{SECRET}@cam/x'",
        f"[tcp @ 0x55d] Connection to tcp://cam:554 failed. url=rtsp://admin:{SECRET}@cam:554/ch1 x",
        f"opening http://u:{SECRET}@cam/snap.jpg and https://u:{SECRET}@cam/x",
        f"rtsp://admin:p@{SECRET}@cam/x",  # unescaped '@' inside the password
        f'"rtsp://admin:{SECRET}@cam/x"',
    ],
)
def test_redact_removes_userinfo_from_messages(message: str) -> None:
    out = redact(message)
    assert SECRET not in out
    assert "***@" in out


def test_redact_leaves_everything_else_alone() -> None:
    text = "no url here; rtsp://cam:554/x and user@example.org stay; e-mail admin@cam"
    assert redact(text) == text
    assert redact("Connection refused: 'rtsp://a:b@h/x'") == "Connection refused: 'rtsp://***@h/x'"


@pytest.mark.parametrize(
    ("sub", "main", "pulled"),
    [
        # the same camera (host and port): the main URL's login, escaped as it was written
        ("rtsp://10.0.0.5/sub", "rtsp://admin:p%40ss@10.0.0.5/main", "rtsp://admin:p%40ss@10.0.0.5/sub"),
        ("rtsp://10.0.0.5:554/s?ch=2", "rtsp://u:pw@10.0.0.5:554/s?ch=1", "rtsp://u:pw@10.0.0.5:554/s?ch=2"),
        # its own login stays
        ("rtsp://u2:v2@10.0.0.5/sub", "rtsp://admin:pw@10.0.0.5/main", "rtsp://u2:v2@10.0.0.5/sub"),
        # another host or port never gets the main login
        ("rtsp://10.0.0.6/sub", "rtsp://admin:pw@10.0.0.5/main", "rtsp://10.0.0.6/sub"),
        ("rtsp://10.0.0.5:8554/sub", "rtsp://admin:pw@10.0.0.5/main", "rtsp://10.0.0.5:8554/sub"),
        # no login to lend
        ("rtsp://10.0.0.5/sub", "rtsp://10.0.0.5/main", "rtsp://10.0.0.5/sub"),
    ],
)
def test_a_substream_borrows_the_main_login_only_from_the_same_camera(sub: str, main: str, pulled: str) -> None:
    assert with_credentials_of(sub, main) == pulled
