"""Media gateway configuration: ICE, viewer admission and queues, ingest options."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fusionhub.media.options import IngestOptions
from fusionhub.media.recording import CallRecordingConfig, RecordingConfig, WhipConfig

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
        default=120,
        ge=1,
        le=10_000,
        description="WHEP sessions the gateway serves at once; one more is refused (503). bench/media_fanout.py "
        "measured 150 viewers of a 720p 2 Mbit/s camera at full rate on 62 % of one core",
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
    max_concurrent_setups: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "WHEP sessions being set up at once (answer, ICE, DTLS); more wait in a queue so set-ups "
            "never starve the live viewers' packets"
        ),
    )
    setup_queue: int = Field(
        default=32, ge=0, le=10_000, description="set-ups that may wait for a free place; one more is refused (503)"
    )
    setup_wait_s: float = Field(
        default=5.0, ge=0, le=60, description="longest wait in the set-up queue before the offer is refused (503)"
    )
    retry_after_s: int = Field(
        default=2, ge=1, le=300, description="Retry-After (seconds) sent with a 503 when the hub is full or busy"
    )
    max_loop_lag_ms: float = Field(
        default=150.0,
        ge=0,
        le=10_000,
        description=(
            "new viewers are refused (503) while the event loop runs this late on average: the hub "
            "is saturated and one more viewer would slow every other; 0 turns the check off"
        ),
    )
    keyframe_request_interval_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="a viewer's keyframe requests (PLI/FIR) are answered from the GOP cache at most this often",
    )
    idle_grace_s: float | None = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description=(
            "a camera nobody watches and analytics does not need stops being pulled after this many "
            "seconds (it starts again on the next viewer); None keeps every camera pulled"
        ),
    )
    ingest: IngestOptions = Field(
        default_factory=IngestOptions, description="how every camera is pulled, reconnected and sampled"
    )
    rtsp_engine: Literal["threads", "event_loop"] = Field(
        default="event_loop",
        description=(
            "how rtsp:// cameras are read. event_loop: every camera read on the hub's event loop, 40 % of "
            "the CPU per frame of threads with hundreds of cameras (bench/ingest_engines.py); it carries video "
            "only, so a camera that offers audio is handed to threads at its first answer, and so is one whose "
            "sessions end twice in a row before any picture. threads: a thread per camera in FFmpeg's RTSP "
            "client, for every camera. rtsps:// cameras always use threads"
        ),
    )
    decode_nice: int = Field(
        default=5, ge=0, le=19,
        description=(
            "how much lower than the hub's other threads the event-loop engine's sample decoding runs (Linux "
            "nice steps). Under overload, camera reading and inference get the CPU first, and keyframes wait "
            "(the latest wins) instead of being decoded only to be superseded in the analytics queue. 0: the same"
        ),
    )
    read_batch_ms: int = Field(
        default=200, ge=0, le=1000,
        description=(
            "event-loop engine: a camera nobody watches live (analytics samples it, the ring keeps its history) "
            "is read once about this many milliseconds of its stream have arrived, several frames per read "
            "instead of one, which halves the engine's CPU per frame (bench/ingest_engines.py). Its samples come "
            "in up to this much later. A viewer, recorder or call turns it off for the camera while it watches. "
            "0: every packet read as it comes"
        ),
    )
    recording: RecordingConfig = Field(
        default_factory=RecordingConfig, description="packet history per source, flag clips, disk budgets"
    )
    whip: WhipConfig = Field(default_factory=WhipConfig, description="WHIP publishers (field phones, terminals)")
    call_recording: CallRecordingConfig = Field(
        default_factory=CallRecordingConfig, description="video calls recorded into their case"
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
