"""Encoded packets: the hand-off between a source (RTSP ingest, WHIP publisher) and its outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One encoded access unit, exactly as the camera sent it (never transcoded)."""

    data: bytes  # H.264 Annex-B access unit; keyframes carry SPS/PPS in-band (annexb.py)
    pts: int  # presentation time on a 90 kHz clock, monotonic per source (rebased to start near 0)
    is_keyframe: bool
    codec: str = "h264"


class PacketSink(Protocol):
    """Receives a source's packets; called on the event loop thread, must not block."""

    def on_packet(self, packet: EncodedPacket) -> None: ...  # called on the event loop thread


# what a source may hand out; anything else is not relayed (G.722 comes from SIP terminals)
AUDIO_CODECS = ("pcma", "pcmu", "opus", "aac", "g722")
# FFmpeg's decoder of each, for the few places that must decode (the shared Opus transcoder, clips)
AUDIO_DECODERS = {"aac": "aac", "pcma": "pcm_alaw", "pcmu": "pcm_mulaw", "opus": "libopus", "g722": "g722"}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a source's audio is; one object per connection, shared by all its packets."""

    codec: str  # one of AUDIO_CODECS
    sample_rate: int  # also the clock rate of AudioPacket.pts
    channels: int
    extradata: bytes = b""  # AAC AudioSpecificConfig (needed to decode it and to write MP4)

    @property
    def decoded_rate(self) -> int:
        """Samples per second once decoded. G.722 is the exception: its RTP clock (and so our pts)
        runs at 8 kHz by an old mistake kept for compatibility (RFC 3551 4.5.2), its audio at 16 kHz."""
        return 16_000 if self.codec == "g722" else self.sample_rate


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One encoded audio frame as the source sent it (G.711, Opus or AAC; never transcoded here)."""

    data: bytes
    pts: int  # on a 1/sample_rate clock, monotonic per source
    format: AudioFormat


class AudioSink(Protocol):
    """Receives a source's audio packets; called on the event loop thread, must not block."""

    def on_audio(self, packet: AudioPacket) -> None: ...
