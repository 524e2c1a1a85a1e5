"""Push-to-talk intercom configuration: floor timers, priorities by role, limits, recording."""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fusionhub.signaling.floor import PRIORITY_MAX, PRIORITY_MIN, FloorConfig

DEFAULT_PRIORITIES = {"commander": 200, "duty": 150, "field": 100, "admin": 100}


class IntercomConfig(BaseModel):
    """How the hub runs push-to-talk rooms."""

    model_config = ConfigDict(extra="forbid")

    floor: FloorConfig = Field(default_factory=FloorConfig, description="floor timers and queue (TS 24.380 model)")
    priorities: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITIES),
        description="floor priority (0–255) of each role; a higher one pre-empts a lower talker",
    )
    max_rooms: int = Field(200, ge=1, le=10_000, description="rooms with participants at once")
    max_participants: int = Field(128, ge=2, le=1_000, description="participants in one room")
    max_sessions: int = Field(1_000, ge=2, le=20_000, description="intercom sessions in the whole hub")
    listener_queue_packets: int = Field(
        25,
        ge=4,
        le=500,
        description="20 ms packets queued per listener; when full the oldest is dropped (a gap, never a growing delay)",
    )
    level_interval_s: float = Field(
        0.1, ge=0.02, le=2.0, description="how often the talker's level is sent to the room"
    )
    channel_buffer_bytes: int = Field(
        256 * 1024,
        ge=4096,
        le=16 * 1024 * 1024,
        description="data-channel bytes a participant may leave unread; above half, level messages are skipped; "
        "above all of it, the participant is disconnected",
    )
    record: bool = Field(True, description="record every burst (remuxed Opus, no re-encode) and report it to dispatch")
    recordings_dir: str = Field(
        "recordings/ptt", min_length=1, max_length=200, description="where bursts are written, under the data directory"
    )
    offer_timeout_s: float = Field(10.0, gt=0, le=120, description="longest time to build a join answer (ICE included)")
    connect_timeout_s: float = Field(
        20.0, gt=0, le=300, description="a session not connected this long after its answer is closed"
    )

    @field_validator("recordings_dir")
    @classmethod
    def _inside_data_dir(cls, value: str) -> str:
        parts = PurePosixPath(value).parts
        if value.startswith(("/", "\\")) or ".." in parts or "\\" in value:
            raise ValueError("must be a relative path inside the data directory")
        return value

    @field_validator("priorities")
    @classmethod
    def _in_range(cls, value: dict[str, int]) -> dict[str, int]:
        for role, prio in value.items():
            if not PRIORITY_MIN <= prio <= PRIORITY_MAX:
                raise ValueError(f"priority of {role!r} must be {PRIORITY_MIN}–{PRIORITY_MAX}, not {prio}")
        return value

    def priority_of(self, role: str) -> int:
        """The floor priority of a role (the lowest, 0, for a role not listed)."""
        return self.priorities.get(role, PRIORITY_MIN)
