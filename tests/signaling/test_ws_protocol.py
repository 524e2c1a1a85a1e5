"""The websocket protocol's pure parts: client message parsing and envelopes."""

from __future__ import annotations

import json

import pytest

from fusionhub.signaling.errors import ProtocolError
from fusionhub.signaling.messages import WsType
from fusionhub.signaling.ws import envelope, parse_client_message


def test_resume_and_ping_parse() -> None:
    assert parse_client_message('{"type":"resume","seq":0,"data":{"last_seq":12}}') == (
        WsType.RESUME,
        {"last_seq": 12},
    )
    assert parse_client_message('{"type":"ping"}') == (WsType.PING, {})
    assert parse_client_message(b'{"type":"ping","data":null}') == (WsType.PING, {})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "malformed"),
        ("[1, 2]", "malformed"),
        ('{"seq": 1}', "malformed"),
        ('{"type": 5}', "malformed"),
        ('{"type": "ping", "data": [1]}', "malformed"),
        ('{"type": "resume", "data": {}}', "malformed"),
        ('{"type": "resume", "data": {"last_seq": -1}}', "malformed"),
        ('{"type": "resume", "data": {"last_seq": "7"}}', "malformed"),
        ('{"type": "resume", "data": {"last_seq": true}}', "malformed"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "event", "data": {}}', "unknown_type"),
        (b"\xff\xfe", "malformed"),
    ],
)
def test_bad_client_messages_are_protocol_errors(text: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text)
    assert info.value.code == code
    assert info.value.message


def test_envelope_shape() -> None:
    assert json.loads(envelope(WsType.PONG, {"t": 1})) == {"type": "pong", "seq": 0, "data": {"t": 1}}
