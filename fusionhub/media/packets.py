"""Encoded packets: the hand-off between a source (RTSP ingest, WHIP publisher) and its outputs."""

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


AUDIO_CODECS = ("pcma", "pcmu", "opus", "aac")  # what a source may hand out; anything else is not relayed


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a source's audio is; one object per connection, shared by all its packets."""

    codec: str  # one of AUDIO_CODECS
    sample_rate: int  # also the clock rate of AudioPacket.pts
    channels: int
    extradata: bytes = b""  # AAC AudioSpecificConfig (needed to decode it and to write MP4)


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One encoded audio frame as the source sent it (G.711, Opus or AAC; never transcoded here)."""

    data: bytes
    pts: int  # on a 1/sample_rate clock, monotonic per source
    format: AudioFormat


class AudioSink(Protocol):
    """Receives a source's audio packets; called on the event loop thread, must not block."""

    def on_audio(self, packet: AudioPacket) -> None: ...
