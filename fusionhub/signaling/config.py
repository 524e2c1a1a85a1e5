"""Configuration of the event bus: in-process (embedded default) or Redis Streams (scale-out)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class BusConfig(BaseModel):
    """Which bus carries events between packages and hub processes, and its limits."""

    model_config = ConfigDict(extra="forbid")

    redis_url: str | None = Field(
        default=None,
        title="Redis URL",
        description="redis://, rediss:// or unix:// URL of the Redis holding the streams; "
        "unset = the in-process bus (one hub process)",
        max_length=2048,
        repr=False,  # may carry a password: keep it out of logged reprs
    )
    stream_prefix: str = Field(
        default="fusionhub:",
        title="Stream key prefix",
        description="prefix of the Redis stream keys (one stream per topic), so hubs can share a Redis",
        min_length=1,
        max_length=64,
    )
    stream_maxlen: int = Field(
        default=100_000,
        title="Stream length cap",
        description="approximate MAXLEN of each stream; must exceed the largest backlog a consumer "
        "group may fall behind by, or trimmed events never reach it",
        ge=1_000,
        le=100_000_000,
    )
    claim_idle_s: float = Field(
        default=60.0,
        title="Claim idle time",
        description="seconds an event may stay delivered but unacknowledged before another consumer "
        "of the group claims it (recovers events of a hub process that died mid-event)",
        ge=1.0,
        le=86_400.0,
    )
    read_block_s: float = Field(
        default=1.0,
        title="Read block time",
        description="longest a Redis read waits for new events; bounds how long closing takes",
        ge=0.05,
        le=30.0,
    )
    read_batch: int = Field(
        default=100, title="Read batch", description="events fetched per Redis read", ge=1, le=10_000
    )
    publish_timeout_s: float = Field(
        default=30.0,
        title="Publish timeout",
        description="how long publish retries while Redis is unreachable before raising BusUnavailable",
        ge=0.1,
        le=3_600.0,
    )
    group_queue_size: int = Field(
        default=10_000,
        title="In-process group queue",
        description="in-process bus: events a consumer group may hold (queued plus delivered and not "
        "yet acknowledged); when full, publish waits (backpressure), it never drops",
        ge=1,
        le=10_000_000,
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_REDIS_SCHEMES):
            # the message must not echo the URL: it may carry a password
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value
