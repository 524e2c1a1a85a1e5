"""The push-to-talk floor protocol on each participant's WebRTC data channel (label "floor").

JSON text messages `{"type": ..., ...}`, defined here once for the hub, the browser client
(static/intercom.js) and the benchmark clients.

client → hub:
- `request` `{"emergency": false}`: ask for the floor (priority comes from the user's role);
- `release` `{}`: stop talking, or give up a queued request.

hub → client:
- `hello` `{"you", "room_id", "participants", "floor"}` when the channel opens (late joiners
  learn at once who is talking);
- `floor` (FloorState JSON) whenever the floor changes, to everyone;
- `participants` `{"participants"}` when someone joins or leaves;
- to the one concerned: `granted` `{"priority", "emergency"}` (start sending), `denied`
  `{"reason"}` (busy, queue_full), `queued` `{"position"}`, `revoked` `{"reason", "grace_s"}`
  (stop: preempted, max_talk, no_media), `ended` `{"reason"}` (you no longer hold the floor),
  `dequeued` `{"reason"}`;
- `level` `{"id", "level"}`: the talker's level 0–1, about ten times a second;
- `error` `{"code", "message"}` for a message the hub cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from fusionhub.signaling.errors import ProtocolError
from fusionhub.signaling.floor import (
    Claim,
    Denied,
    Dequeued,
    Ended,
    FloorEvent,
    FloorSnapshot,
    Granted,
    Queued,
    Revoked,
)

CHANNEL_LABEL = "floor"
MAX_CLIENT_MESSAGE = 1024


class FloorMsg(StrEnum):
    """Message types on the floor data channel."""

    REQUEST = "request"
    RELEASE = "release"
    HELLO = "hello"
    FLOOR = "floor"
    PARTICIPANTS = "participants"
    GRANTED = "granted"
    DENIED = "denied"
    QUEUED = "queued"
    REVOKED = "revoked"
    ENDED = "ended"
    DEQUEUED = "dequeued"
    LEVEL = "level"
    ERROR = "error"


# who: session id -> {"id", "user_id", "name", "role"} of that participant
Describe = Callable[[str], Mapping[str, Any]]


def encode(kind: FloorMsg, **data: Any) -> str:
    """One message as compact JSON text."""
    return json.dumps({"type": kind.value, **data}, separators=(",", ":"), ensure_ascii=False)


def parse_client(text: str | bytes) -> tuple[FloorMsg, bool]:
    """A client message as (type, emergency); raises ProtocolError for anything else."""
    if len(text) > MAX_CLIENT_MESSAGE:
        raise ProtocolError("too_large", f"floor messages are at most {MAX_CLIENT_MESSAGE} bytes")
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("malformed", f"not JSON: {exc}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("malformed", 'a floor message is an object {"type": ...}')
    if msg["type"] not in (FloorMsg.REQUEST, FloorMsg.RELEASE):
        raise ProtocolError("unknown_type", f"clients send request or release, not {msg['type'][:40]!r}")
    emergency = msg.get("emergency", False)
    if not isinstance(emergency, bool):
        raise ProtocolError("malformed", "emergency must be true or false")
    return FloorMsg(msg["type"]), emergency


def _claim_json(claim: Claim, describe: Describe) -> dict[str, Any]:
    return {**describe(claim.participant), "priority": claim.priority, "emergency": claim.emergency}


def floor_json(snap: FloorSnapshot, describe: Describe, *, to_epoch: Callable[[float], float]) -> dict[str, Any]:
    """The floor as the API and the data channel show it (`since` in epoch seconds)."""
    return {
        "state": snap.phase.value,
        "holder": _claim_json(snap.holder, describe) if snap.holder is not None else None,
        "since": to_epoch(snap.granted_at) if snap.granted_at is not None else None,
        "revoke_reason": snap.revoke_reason,
        "queue": [_claim_json(c, describe) for c in snap.queue],
        "version": snap.version,
    }


def event_message(event: FloorEvent) -> tuple[str, str]:
    """(participant, message text) telling one participant what a floor event means for it."""
    if isinstance(event, Granted):
        return event.participant, encode(FloorMsg.GRANTED, priority=event.priority, emergency=event.emergency)
    if isinstance(event, Denied):
        return event.participant, encode(FloorMsg.DENIED, reason=event.reason)
    if isinstance(event, Queued):
        return event.participant, encode(FloorMsg.QUEUED, position=event.position)
    if isinstance(event, Revoked):
        return event.participant, encode(FloorMsg.REVOKED, reason=event.reason, grace_s=event.grace_s)
    if isinstance(event, Ended):
        return event.participant, encode(FloorMsg.ENDED, reason=event.reason)
    if isinstance(event, Dequeued):
        return event.participant, encode(FloorMsg.DEQUEUED, reason=event.reason)
    raise TypeError(f"not a floor event: {event!r}")
