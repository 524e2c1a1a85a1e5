"""Bus topics, websocket message types and their payload shapes: defined once, imported everywhere.

Packages side by side (media, analytics, dispatch) never import each other; what one tells
another travels as one of these messages on the bus, so each can run in its own process.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Topic(StrEnum):
    """Bus topics. Events that create or change a record are never dropped."""

    FLAG_RAISED = "analytics.flag_raised"  # analytics -> dispatch: a rule fired (FlagRaised)
    FLAG_CREATED = "dispatch.flag_created"  # dispatch -> consoles: a flag is in the review queue
    FLAG_REVIEWED = "dispatch.flag_reviewed"  # dispatch -> consoles: confirmed or dismissed
    CASE_CHANGED = "dispatch.case_changed"  # dispatch -> consoles: case created or moved on
    TASK_CHANGED = "dispatch.task_changed"  # dispatch -> consoles/field pages: task assigned/acked/done
    CAMERA_STATUS = "media.camera_status"  # media -> consoles: online / offline / degraded


class WsType(StrEnum):
    """Websocket message types (the `type` of a `{"type", "seq", "data"}` envelope)."""

    HELLO = "hello"  # server -> client on connect: user, server time zone, last seq
    RESUME = "resume"  # client -> server: {"last_seq": N}, replay what was missed
    RESYNC = "resync"  # server -> client: the gap is too old to replay; refetch state over REST
    EVENT = "event"  # server -> client: a bus event the user may see ({"topic", "data"})
    PING = "ping"
    PONG = "pong"
    ERROR = "error"


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Box(_Msg):
    """One detection, in pixels of the analysed (downscaled) frame."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    track_id: int | None = None


class FlagRaised(_Msg):
    """Analytics saw something a rule cares about long enough: a candidate for the review queue."""

    flag_id: str = Field(description="UUID chosen by analytics; dispatch stores it idempotently")
    camera_id: int
    zone_id: int
    zone_name: str
    rule: Literal["occupied_road", "overflowing_bin"]
    label: str = Field(description="what was seen, e.g. 'car'")
    confidence: float = Field(ge=0.0, le=1.0)
    boxes: list[Box]
    frame_width: int
    frame_height: int
    evidence_path: str = Field(description="evidence JPEG, relative to the data directory")
    first_seen_at: float = Field(description="epoch seconds the object entered the zone")
    raised_at: float = Field(description="epoch seconds the rule fired")


class CameraStatus(_Msg):
    """Health of one camera as the media gateway sees it."""

    camera_id: int
    state: Literal["connecting", "online", "offline", "degraded", "stopped"]
    reason: str | None = Field(
        default=None,
        description="why not online: unreachable, auth_refused, no_video, unsupported_codec, ended",
    )
    since: float


def payload(model: BaseModel) -> dict[str, Any]:
    """A message as the JSON-able dict the bus carries."""
    return model.model_dump(mode="json")
