"""Media gateway configuration: ICE, viewer admission and queues, ingest options."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fusionhub.media.options import IngestOptions

ICE_URL_PATTERN = r"^(stun|stuns|turn|turns):[A-Za-z0-9.\-\[\]:]{1,253}(\?transport=(udp|tcp))?$"


class MediaConfig(BaseModel):
    """How the media gateway pulls cameras and serves WHEP viewers."""

    model_config = ConfigDict(extra="forbid")

    ice_servers: list[str] = Field(
        default_factory=list,
        max_length=8,
        description=(
            "STUN/TURN URLs offered to aiortc (e.g. 'stun:stun.example.org:3478'); empty by default "
            "so the hub never contacts a public STUN server on its own"
        ),
    )
    ice_host_addresses: list[str] | None = Field(
        default=None,
        max_length=16,
        description=(
            "local IP addresses to offer as ICE host candidates (e.g. ['127.0.0.1']); None offers every "
            "interface address except loopback (aioice's default). Process-wide while the gateway runs"
        ),
    )
    max_viewers: int = Field(
        default=64, ge=1, le=10_000, description="WHEP sessions the gateway serves at once; one more is refused (503)"
    )
    viewer_queue_packets: int = Field(
        default=120,
        ge=8,
        le=5_000,
        description=(
            "packets queued per viewer (and the longest GOP cached for late joiners); a viewer whose "
            "queue fills is cleared and resumes at the next keyframe"
        ),
    )
    offer_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="longest time to build a WHEP answer (ICE gathering included)"
    )
    connect_timeout_s: float = Field(
        default=20.0, gt=0, le=300, description="a WHEP session not connected this long after its answer is closed"
    )
    ingest: IngestOptions = Field(
        default_factory=IngestOptions, description="how every camera is pulled, reconnected and sampled"
    )

    @field_validator("ice_servers")
    @classmethod
    def _ice_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(ICE_URL_PATTERN, url):
                raise ValueError(f"not a stun:/turn: URL: {url!r}")
        return value

    @field_validator("ice_host_addresses")
    @classmethod
    def _ip_addresses(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one address, or leave it unset")
        return [str(ipaddress.ip_address(a)) for a in value]
