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
    # analytics -> dispatch: a flagged stay goes on (ZoneSighting): "still present" on the zone's open case
    ZONE_SIGHTING = "analytics.zone_sighting"
    FLAG_CREATED = "dispatch.flag_created"  # dispatch -> consoles: a flag is in the review queue
    FLAG_REVIEWED = "dispatch.flag_reviewed"  # dispatch -> consoles: confirmed or dismissed
    CASE_CHANGED = "dispatch.case_changed"  # dispatch -> consoles: case created or moved on
    TASK_CHANGED = "dispatch.task_changed"  # dispatch -> consoles/field pages: task assigned/acked/done
    # dispatch -> consoles/field pages: a case's deadline nears or passed, a reminder, a penalty (CaseAlert)
    CASE_ALERT = "dispatch.case_alert"
    # dispatch -> consoles/field pages: an instruction was sent, acknowledged, reported, escalated, cancelled
    INSTRUCTION_CHANGED = "dispatch.instruction_changed"
    # dispatch -> commanders/duty over the recipient (and the sender): a recipient did not acknowledge in time
    INSTRUCTION_ESCALATED = "dispatch.instruction_escalated"
    CAMERA_STATUS = "media.camera_status"  # media -> consoles: online / offline / degraded
    PTT_BURST = "media.ptt_burst"  # media -> dispatch: a push-to-talk burst was recorded (PttBurst)
    CLIP_READY = "media.clip_ready"  # media -> dispatch: a flag's MP4 clip is written (ClipReady)
    CLIP_MISSING = "media.clip_missing"  # media -> dispatch: a clip was not written or was deleted (ClipMissing)
    PUBLISHER_STATUS = "media.publisher_status"  # media -> consoles: a WHIP publisher is live or gone
    FLAG_CLIP = "dispatch.flag_clip"  # dispatch -> consoles: a flag's clip is ready or missing (Flag)
    # console -> callees/consoles (the ring) and dispatch (the case timeline): a video call changed (CallChanged)
    CALL_CHANGED = "calls.call_changed"
    CALL_RECORDED = "media.call_recorded"  # media -> dispatch: one party of a call was recorded (CallRecorded)
    # analytics -> consoles: whether analytics keeps up changed (AnalyticsLoad); details over REST
    ANALYTICS_LOAD = "analytics.load"


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
    rule: Literal["occupied_road", "street_stall", "overflowing_bin"]
    label: str = Field(description="what was seen, e.g. 'car'")
    confidence: float = Field(ge=0.0, le=1.0)
    boxes: list[Box]
    frame_width: int
    frame_height: int
    evidence_path: str = Field(description="evidence JPEG, relative to the data directory")
    frame_path: str | None = Field(
        default=None, description="the same frame without drawings (for training), relative to the data directory"
    )
    repeat: int = Field(default=0, ge=0, description="0: first flag of a stay; n: its nth re-alert while it stays")
    first_seen_at: float = Field(description="epoch seconds the object entered the zone")
    raised_at: float = Field(description="epoch seconds the rule fired")


class ZoneSighting(_Msg):
    """A stay that was flagged goes on (no new flag): dispatch notes it on the zone's open case, if any."""

    camera_id: int
    zone_id: int
    rule: Literal["occupied_road", "street_stall", "overflowing_bin"]
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    first_seen_at: float = Field(description="epoch seconds the stay began")
    flagged_at: float = Field(description="epoch seconds of its last flag")
    seen_at: float = Field(description="epoch seconds of the frame it is still seen in")


class FlagReview(BaseModel):
    """What analytics reads of a FLAG_REVIEWED event (the review queue's whole flag, in the API's
    shape): a dismissed flag's stay stops re-alerting."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # the rest of the flag is the console's

    id: str
    camera_id: int
    zone_id: int
    status: str = Field(description="confirmed or dismissed")


class CameraStatus(_Msg):
    """Health of one camera as the media gateway sees it.

    `idle`: not pulled now because nobody watches it and analytics does not need it; the next
    viewer starts it again.
    """

    camera_id: int
    state: Literal["connecting", "online", "offline", "degraded", "stopped", "idle"]
    reason: str | None = Field(
        default=None,
        description=(
            "why not online: unreachable, auth_refused, no_video, unsupported_codec, ended, timeout, "
            "no_keyframe (degraded)"
        ),
    )
    since: float
    substream_online: bool | None = Field(
        default=None,
        description=(
            "a camera with a substream: true while analytics decodes it, false while it is down and the main "
            "stream stands in; null: no substream running"
        ),
    )


class ClipReady(_Msg):
    """A flag's clip is on disk: `path` is relative to the data directory (clips/<uuid>.mp4)."""

    flag_id: str
    camera_id: int
    path: str
    start: float = Field(description="epoch seconds of the first picture")
    end: float = Field(description="epoch seconds of the last picture")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    has_audio: bool = False


class ClipMissing(_Msg):
    """A flag's clip could not be written, or retention deleted it (found by flag id or by path)."""

    flag_id: str | None = None
    camera_id: int | None = None
    path: str | None = Field(default=None, description="the deleted clip, relative to the data directory")
    reason: Literal["no_video", "disk_full", "write_failed", "no_budget", "busy", "retention", "stopped"]


class PublisherStatus(_Msg):
    """A WHIP publisher (field phone, terminal) as the media gateway sees it."""

    name: str
    source_id: int = Field(description="the publisher's source id (negative, never a camera id)")
    state: Literal["connecting", "online", "offline"]
    reason: str | None = None
    region: str
    user_id: int
    has_audio: bool
    since: float


class PttBurst(_Msg):
    """One push-to-talk burst, remuxed (not re-encoded) into an Ogg Opus file; a record: never dropped."""

    burst_id: str = Field(description="UUID chosen by media; dispatch stores it idempotently")
    room_id: str = Field(max_length=200, description="the intercom room, e.g. 'team:3' or 'case:12'")
    case_id: int | None = Field(default=None, description="the case of a case room: the burst joins its timeline")
    speaker_id: int = Field(description="user id of the talker")
    speaker_name: str = Field(max_length=64)
    started_at: float = Field(description="epoch seconds the floor was granted")
    ended_at: float = Field(description="epoch seconds the floor was released or taken back")
    end_reason: str = Field(max_length=32, description="released, preempted, max_talk, no_media, left, closed")
    duration_s: float = Field(ge=0, description="seconds of audio in the file")
    packets: int = Field(ge=1)
    path: str = Field(max_length=512, description="the Ogg Opus file, relative to the data directory")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)


class CallParticipant(_Msg):
    """One party of a video call."""

    user_id: int
    name: str = Field(max_length=64)
    role: Literal["caller", "callee"]


class CallChanged(_Msg):
    """A video call from a case rang, was answered, or ended; a record: never dropped.

    `ringing` goes to the callees' field pages (`ring_user_ids`); `active` and `ended` also
    become `call_started` / `call_ended` entries of the case's timeline.
    """

    call_id: str = Field(max_length=64, description="random id chosen by the console")
    case_id: int
    case_title: str = Field(max_length=256)
    region: str = Field(max_length=128, description="the case's region")
    caller_id: int
    caller_name: str = Field(max_length=64)
    state: Literal["ringing", "active", "ended"]
    ring_user_ids: list[int] = Field(max_length=200, description="everyone rung for the call")
    team_id: int | None = Field(default=None, description="the team called, when a team was called")
    participants: list[CallParticipant] = Field(max_length=200, description="the caller and whoever answered")
    camera_ids: list[int] = Field(default_factory=list, max_length=16, description="camera feeds added to the call")
    terminal_ids: list[int] = Field(default_factory=list, max_length=16, description="conference terminals added to the call")
    end_reason: str | None = Field(
        default=None, max_length=32, description="hangup, declined, missed, cancelled, lost, closed (state ended)"
    )
    started_at: float | None = Field(default=None, description="epoch seconds the call was answered")
    at: float = Field(description="epoch seconds of this change")


class CallRecorded(_Msg):
    """One party's side of a video call, remuxed (not re-encoded) into an MP4; a record: never dropped."""

    recording_id: str = Field(max_length=64, description="UUID chosen by media; dispatch stores it once")
    call_id: str = Field(max_length=64)
    case_id: int
    user_id: int = Field(description="the party whose camera and microphone this is")
    name: str = Field(max_length=64, description="the party's display name")
    started_at: float = Field(description="epoch seconds of the first picture")
    ended_at: float = Field(description="epoch seconds of the last picture")
    duration_s: float = Field(ge=0)
    has_audio: bool
    truncated: bool = Field(default=False, description="the size limit cut the recording short")
    path: str = Field(max_length=512, description="the MP4, relative to the data directory")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)


class CaseAlert(_Msg):
    """The deadline supervisor speaks: pushed to the case's team (field pages) and the centre (consoles)."""

    case_id: int
    title: str
    kind: Literal["warning", "overdue", "reminder", "penalty"] = Field(
        description="warning: the share of the limit is used; overdue: the deadline passed (supervision starts, "
        "reminder 1); reminder: a further reminder; penalty: reminders went unanswered"
    )
    stage: Literal["dispatch", "handle"] = Field(description="dispatch: the centre must dispatch; handle: the team")
    status: str = Field(description="the case's status")
    due_at: float = Field(description="epoch seconds of the stage's deadline")
    reminder: int = Field(default=0, ge=0, description="which reminder this is (overdue and reminder)")
    unanswered: int = Field(default=0, ge=0, description="reminders the team has not answered")
    team_id: int | None = None
    region: str
    at: float = Field(description="epoch seconds the supervisor noticed")


class AnalyticsLoad(_Msg):
    """Whether analytics keeps up changed: its state, why, or which cameras lose most.

    No camera is named: consoles fetch GET /api/v1/analytics/load, which names the cameras each
    user may see."""

    state: Literal["no_workers", "warming_up", "idle", "keeping_up", "behind"]
    reasons: list[Literal["superseded", "late", "failed"]] = Field(
        default_factory=list, description="why behind (analytics/load.py)"
    )
    at: float = Field(description="epoch seconds the hub judged")


def payload(model: BaseModel) -> dict[str, Any]:
    """A message as the JSON-able dict the bus carries."""
    return model.model_dump(mode="json")
