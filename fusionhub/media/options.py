"""Settings of one camera source (ingest and sampling), embedded in the media config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .sampling import SamplingOptions


class IngestOptions(BaseModel):
    """How a source pulls its camera, reconnects, and samples frames for analytics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(
        default=5.0,
        ge=0.5,
        le=60.0,
        title="Network timeout",
        description="Seconds to wait for the camera to answer while connecting or streaming "
        "before the connection is declared dead (reason 'timeout').",
    )
    reconnect_min_s: float = Field(
        default=1.0,
        ge=0.05,
        le=60.0,
        title="First reconnect delay",
        description="Delay before the first reconnection attempt; doubles on each failure.",
    )
    reconnect_max_s: float = Field(
        default=30.0,
        ge=0.05,
        le=600.0,
        title="Longest reconnect delay",
        description="Upper bound of the exponential reconnect backoff (jitter is applied below it).",
    )
    sample_min_interval_s: float = Field(
        default=1.0,
        ge=0.0,
        le=3600.0,
        title="Sampling interval",
        description="At most one analytics sample per this many seconds (only keyframes are "
        "decoded, so a camera with a long GOP samples less often).",
    )
    sample_max_side: int = Field(
        default=640,
        ge=32,
        le=4096,
        title="Sample size",
        description="Samples are downscaled so their longer side is at most this many pixels.",
    )
    jpeg_quality: int = Field(
        default=80,
        ge=10,
        le=100,
        title="Snapshot JPEG quality",
        description="JPEG quality of the camera snapshot (latest decoded keyframe).",
    )
    sampling: SamplingOptions | None = Field(
        default=None,
        title="Sampling mode",
        description="This camera's own sampling (set per camera from its record); None: keyframes only, "
        "at most one per sample_min_interval_s.",
    )
    keyframe_timeout_s: float = Field(
        default=15.0,
        ge=1.0,
        le=600.0,
        title="Keyframe timeout",
        description="A connected camera that sends no keyframe for this long is reported "
        "'degraded' (new viewers cannot start, analytics gets no samples).",
    )

    @property
    def sample_mode(self) -> str:
        """keyframes or fps."""
        return self.sampling.mode if self.sampling is not None else "keyframes"

    @property
    def sample_interval_s(self) -> float:
        """Media seconds between two samples, at least."""
        return self.sampling.interval_s if self.sampling is not None else self.sample_min_interval_s

    @model_validator(mode="after")
    def _backoff_ordered(self) -> IngestOptions:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
