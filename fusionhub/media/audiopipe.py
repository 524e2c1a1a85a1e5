"""The audio side of a source's thread: which audio a stream carries, and monotonic audio pts.

Audio is never decoded here. G.711 and Opus are relayed as they come; AAC is relayed too and
converted to Opus once per source, on the loop side, only while a viewer listens
(media/transcode.py).
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av

from .packets import AudioFormat, AudioPacket

log = logging.getLogger(__name__)

# FFmpeg codec name -> our codec name
_CODECS = {"pcm_alaw": "pcma", "pcm_mulaw": "pcmu", "aac": "aac", "opus": "opus", "libopus": "opus"}
# A jump larger than this between consecutive packets is a clock reset, not a real gap.
_MAX_JUMP_S = 10


def audio_format(stream: av.AudioStream) -> AudioFormat | None:
    """Our AudioFormat for a demuxed stream, or None when its codec is not one we relay."""
    ctx = stream.codec_context
    codec = _CODECS.get(ctx.name)
    rate = int(ctx.sample_rate or 0)
    if codec is None or rate <= 0:
        return None
    channels = int(getattr(ctx, "channels", 0) or (ctx.layout.nb_channels if ctx.layout else 1) or 1)
    return AudioFormat(codec=codec, sample_rate=rate, channels=channels, extradata=bytes(ctx.extradata or b""))


def pick_audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    """The first audio stream whose codec we relay (None when there is none)."""
    for stream in container.streams.audio:
        if audio_format(stream) is not None:
            return stream
    return None


class AudioPipeline:
    """Turns one source's demuxed audio packets into AudioPackets with monotonic pts."""

    def __init__(self, camera_id: int) -> None:
        self._camera_id = camera_id
        self._format: AudioFormat | None = None
        self._time_base = Fraction(1, 8000)
        self._origin: int | None = None
        self._base = 0
        self._last_out: int | None = None
        self._gap = 160

    @property
    def format(self) -> AudioFormat | None:
        """The current connection's audio format (None: no audio we relay)."""
        return self._format

    def begin(self, stream: av.AudioStream | None) -> None:
        """A new connection: note its format; pts continue after the previous connection's."""
        fmt = audio_format(stream) if stream is not None else None
        if fmt is not None and self._format is not None and fmt.sample_rate != self._format.sample_rate:
            self._last_out = None  # a different clock: start it afresh
        self._format = fmt
        if stream is not None and fmt is not None:
            self._time_base = stream.time_base or Fraction(1, fmt.sample_rate)
            log.debug("[camera %d] audio %s %d Hz x%d", self._camera_id, fmt.codec, fmt.sample_rate, fmt.channels)
        self._origin = None
        self._base = 0 if self._last_out is None else self._last_out + self._gap

    def push(self, packet: av.Packet) -> AudioPacket | None:
        """One demuxed audio packet as an AudioPacket (None for empty packets or unrelayed audio)."""
        fmt = self._format
        if fmt is None or not packet.size:
            return None
        ts = packet.pts if packet.pts is not None else packet.dts
        return AudioPacket(data=bytes(packet), pts=self._map_pts(ts, fmt.sample_rate), format=fmt)

    def _map_pts(self, ts: int | None, rate: int) -> int:
        last = self._last_out
        if ts is None:
            pts = self._base if last is None else last + self._gap
        else:
            src = int(ts * self._time_base * rate)
            if self._origin is None:
                self._origin = src
                if last is not None:
                    self._base = last + self._gap
            pts = self._base + (src - self._origin)
            if last is not None and abs(pts - last) > _MAX_JUMP_S * rate:
                self._origin, self._base = src, last + self._gap
                pts = self._base
        if last is not None:
            if pts <= last:
                pts = last + self._gap
            else:
                self._gap = min(pts - last, rate)  # typical spacing, for untimed packets
        self._last_out = pts
        return pts
