"""Settings of evidence recording and publishing: ring buffers, flag clips, disk budgets, WHIP."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

GIB = 1024**3


class RecordingConfig(BaseModel):
    """Per-source packet history, flag clips, and the disk budget of clips and evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buffer_s: float = Field(
        default=30.0,
        ge=0.0,
        le=600.0,
        description="seconds of encoded packets kept per source for clips (0 turns clips off)",
    )
    buffer_bytes: int = Field(
        default=64 * 1024**2,
        ge=1024**2,
        le=4 * GIB,
        description="bytes of packets kept per source at most; the oldest group of pictures goes first",
    )
    clip_before_s: float = Field(default=10.0, ge=0.0, le=300.0, description="a flag's clip starts this long before the flag")
    clip_after_s: float = Field(default=10.0, ge=0.0, le=300.0, description="and ends this long after it")
    max_pending_clips: int = Field(
        default=32, ge=1, le=1024, description="clips waiting for their 'after' part at once; more are refused (reason 'busy')"
    )
    clips_budget_bytes: int = Field(
        default=10 * GIB,
        ge=0,
        le=1024**5,
        description="disk space for clips under <data_dir>/clips; the oldest are deleted first; 0 records none",
    )
    evidence_budget_bytes: int = Field(
        default=2 * GIB,
        ge=0,
        le=1024**5,
        description="disk space for evidence pictures under <data_dir>/evidence; the oldest are deleted first",
    )
    retention_interval_s: float = Field(
        default=60.0, ge=1.0, le=86_400.0, description="how often the evidence budget is enforced"
    )

    @model_validator(mode="after")
    def _buffer_covers_clip(self) -> RecordingConfig:
        if self.buffer_s and self.buffer_s < self.clip_before_s + self.clip_after_s + 2:
            raise ValueError("buffer_s must be at least clip_before_s + clip_after_s + 2 (or 0 to turn clips off)")
        return self


class WhipConfig(BaseModel):
    """WHIP publishers (field phones, WebRTC terminals)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_publishers: int = Field(default=16, ge=0, le=1_000, description="publishers at once; one more is refused (503)")
    keyframe_interval_s: float = Field(
        default=2.0,
        ge=0.5,
        le=60.0,
        description="a publisher is asked for a keyframe this often (browsers send them only on request)",
    )
    idle_timeout_s: float = Field(
        default=10.0, ge=1.0, le=300.0, description="a publisher that sends nothing this long is ended"
    )


class CallRecordingConfig(BaseModel):
    """Video calls recorded into their case: each party's H.264 + audio remuxed into an MP4, never re-encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="record every answered call (one file per party)")
    subdir: str = Field(
        default="recordings/calls",
        pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
        max_length=128,
        description="folder under the data directory for call recordings",
    )
    max_bytes: int = Field(
        default=1024**3,
        ge=1024**2,
        le=2 * GIB - 1,
        description="one party's recording stops (and is kept, marked truncated) at this many bytes",
    )
    flush_interval_s: float = Field(
        default=0.5, ge=0.05, le=10.0, description="packets are handed to the writer thread this often"
    )
    max_pending_packets: int = Field(
        default=2000,
        ge=100,
        le=100_000,
        description="packets waiting for the writer at most; beyond, video skips to the next keyframe and audio drops",
    )
