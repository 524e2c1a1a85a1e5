"""Encoded video packets: the hand-off between an ingest source and the WebRTC relay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One encoded access unit, exactly as the camera sent it (never transcoded)."""

    data: bytes  # H.264 Annex-B access unit; keyframes carry SPS/PPS in-band (dump_extra)
    pts: int  # presentation time on a 90 kHz clock, monotonic per source (rebased to start near 0)
    is_keyframe: bool
    codec: str = "h264"


class PacketSink(Protocol):
    """Receives a source's packets; called on the event loop thread, must not block."""

    def on_packet(self, packet: EncodedPacket) -> None: ...  # called on the event loop thread
