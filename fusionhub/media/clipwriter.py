"""Write ring entries to an MP4 without re-encoding the video (blocking: run it in a thread).

Video: the H.264 access units as the camera sent them; the MP4 muxer builds the avcC record
from the in-band SPS/PPS every keyframe carries. Audio, with its arrival offset from the
first picture:
- AAC is copied; each frame gets an ADTS header so the muxer's aac_adtstoasc filter writes the
  AudioSpecificConfig (PyAV's mux-only streams cannot take extradata directly);
- Opus is copied into a stream whose OpusHead comes from an opened libopus context;
- G.711 cannot go into an MP4 a browser plays, so it is converted to AAC (audio only, small).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.codeccontext import AudioCodecContext
from av.video.codeccontext import VideoCodecContext

from fusionhub.media.errors import MediaError
from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket
from fusionhub.media.ring import RingEntry

VIDEO_TB = Fraction(1, 90_000)


class ClipError(MediaError):
    """A clip could not be written; `reason` is what the record shows (no_video, disk_full, write_failed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What was written: epoch start/end of the pictures, size, hash, whether audio is in it."""

    start: float
    end: float
    size: int
    sha256: str
    has_audio: bool


def adts_header(asc: bytes, payload_len: int) -> bytes:
    """The 7-byte ADTS header of one raw AAC frame described by an AudioSpecificConfig."""
    if len(asc) < 2:
        raise ClipError("write_failed", "AAC audio without its AudioSpecificConfig")
    obj = asc[0] >> 3
    freq = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    chans = (asc[1] >> 3) & 0x0F
    n = payload_len + 7
    return bytes(
        [
            0xFF,
            0xF1,  # MPEG-4, no CRC
            ((max(obj, 1) - 1) << 6) | (freq << 2) | (chans >> 2),
            ((chans & 0x03) << 6) | (n >> 11),
            (n >> 3) & 0xFF,
            ((n & 0x07) << 5) | 0x1F,
            0xFC,
        ]
    )


def _picture_size(first_keyframe: bytes) -> tuple[int, int]:
    decoder = av.CodecContext.create("h264", "r")
    assert isinstance(decoder, VideoCodecContext)
    try:
        for frame in decoder.decode(av.Packet(first_keyframe)):
            return frame.width, frame.height
        for frame in decoder.decode(None):
            return frame.width, frame.height
    except av.error.FFmpegError as exc:
        raise ClipError("no_video", f"the first keyframe does not decode: {exc}") from exc
    raise ClipError("no_video", "the first keyframe does not decode")


class _AudioOut:
    """One audio stream of the clip and how packets reach it."""

    def __init__(self, container: av.container.OutputContainer, fmt: AudioFormat) -> None:
        self.format = fmt
        self.transcode: tuple[AudioCodecContext, av.AudioResampler] | None = None
        self._next = 0
        if fmt.codec == "aac":
            self.stream: av.stream.Stream = container.add_mux_stream("aac", rate=fmt.sample_rate)
            self.time_base = Fraction(1, fmt.sample_rate)
        elif fmt.codec == "opus":
            self.stream = container.add_stream("libopus", rate=48_000)
            ctx = self.stream.codec_context
            ctx.layout = "stereo" if fmt.channels == 2 else "mono"
            self.time_base = Fraction(1, 48_000)
        else:  # G.711: to AAC
            self.stream = container.add_stream("aac", rate=fmt.sample_rate)
            ctx = self.stream.codec_context
            ctx.layout = "mono"
            ctx.bit_rate = 32_000
            decoder = av.CodecContext.create("pcm_alaw" if fmt.codec == "pcma" else "pcm_mulaw", "r")
            assert isinstance(decoder, AudioCodecContext)
            decoder.sample_rate, decoder.layout = fmt.sample_rate, "mono"
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=fmt.sample_rate, frame_size=1024)
            self.transcode = (decoder, resampler)
            self.time_base = Fraction(1, fmt.sample_rate)

    def packets(self, item: AudioPacket, pts: int) -> list[av.Packet]:
        if self.transcode is None:
            data = item.data
            if self.format.codec == "aac":
                data = adts_header(self.format.extradata, len(data)) + data
            packet = av.Packet(data)
            packet.pts = packet.dts = pts
            packet.time_base = self.time_base
            packet.stream = self.stream
            return [packet]
        decoder, resampler = self.transcode
        out: list[av.Packet] = []
        for frame in decoder.decode(av.Packet(item.data)):
            frame.pts = None
            for chunk in resampler.resample(frame):
                chunk.pts = max(pts, self._next)
                self._next = chunk.pts + chunk.samples
                out += self._encoder().encode(chunk)
        return out

    def flush(self) -> list[av.Packet]:
        return list(self._encoder().encode(None)) if self.transcode is not None else []

    def _encoder(self) -> av.AudioStream:
        assert isinstance(self.stream, av.AudioStream)
        return self.stream


def write_clip(path: Path, entries: list[RingEntry]) -> ClipInfo:
    """Write `entries` (from PacketRing.window) to `path` atomically; raises ClipError.

    The file appears only when complete (written as a hidden .part, then renamed); on any
    failure the partial file is removed. ENOSPC is reported as reason "disk_full".
    """
    video = [(e.at, e.packet) for e in entries if isinstance(e.packet, EncodedPacket)]
    if not video or not video[0][1].is_keyframe:
        raise ClipError("no_video", "no pictures were received for this clip's time span")
    audio = [(e.at, e.packet) for e in entries if isinstance(e.packet, AudioPacket)]
    width, height = _picture_size(video[0][1].data)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            vstream = container.add_mux_stream("h264", width=width, height=height)
            vstream.time_base = VIDEO_TB
            aout = _AudioOut(container, audio[0][1].format) if audio else None
            origin_at, origin_pts = video[0][0], video[0][1].pts
            for _, vp in video:
                packet = av.Packet(vp.data)
                packet.pts = packet.dts = vp.pts - origin_pts
                packet.time_base = VIDEO_TB
                packet.is_keyframe = vp.is_keyframe
                packet.stream = vstream
                container.mux(packet)
            if aout is not None:
                _mux_audio(container, aout, audio, origin_at)
        info = _describe(tmp, video, bool(audio))
        os.replace(tmp, path)
        return info
    except ClipError:
        _unlink(tmp)
        raise
    except (OSError, av.error.FFmpegError) as exc:
        _unlink(tmp)
        errno = getattr(exc, "errno", None)
        if errno == 28 or "No space left" in str(exc):
            raise ClipError("disk_full", "the disk is full") from exc
        raise ClipError("write_failed", f"the clip could not be written: {exc.strerror or exc}") from exc


def _mux_audio(
    container: av.container.OutputContainer, aout: _AudioOut, audio: list[tuple[float, AudioPacket]], origin_at: float
) -> None:
    rate = aout.format.sample_rate
    first_at, first = audio[0]
    shift = round((first_at - origin_at) * rate) - first.pts  # audio placed by arrival, on its own clock
    scale = aout.time_base * rate  # source clock -> stream time base (Opus streams tick at 48 kHz)
    last = -1
    for _, ap in audio:
        if ap.format != aout.format:
            break  # the source changed its audio mid-clip: keep the part that matches
        pts = round((ap.pts + shift) / scale)
        if pts < 0 or pts <= last:
            continue  # before the first picture, or out of order
        last = pts
        for packet in aout.packets(ap, pts):
            container.mux(packet)
    for packet in aout.flush():
        container.mux(packet)


def _describe(tmp: Path, video: list[tuple[float, EncodedPacket]], has_audio: bool) -> ClipInfo:
    digest = hashlib.sha256()
    size = 0
    with open(tmp, "rb") as fh:
        while chunk := fh.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    start_at = video[0][0]
    end_at = start_at + (video[-1][1].pts - video[0][1].pts) / 90_000
    return ClipInfo(start=start_at, end=end_at, size=size, sha256=digest.hexdigest(), has_audio=has_audio)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
