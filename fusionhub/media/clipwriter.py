"""Write ring entries to an MP4 without re-encoding the video (blocking: run it in a thread).

Video: the H.264 access units as the camera sent them; the MP4 muxer builds the avcC record
from the in-band SPS/PPS every keyframe carries. Audio, with its arrival offset from the
first picture:
- AAC is copied; each frame gets an ADTS header so the muxer's aac_adtstoasc filter writes the
  AudioSpecificConfig (PyAV's mux-only streams cannot take extradata directly);
- Opus is copied into a stream whose OpusHead comes from an opened libopus context;
- G.711 and G.722 cannot go into an MP4 a browser plays, so they are converted to AAC (audio
  only, small).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.codeccontext import AudioCodecContext
from av.video.codeccontext import VideoCodecContext

from fusionhub.media.errors import MediaError
from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket
from fusionhub.media.ring import RingEntry
from fusionhub.media.transcode import audio_decoder

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
        else:  # G.711, G.722: to AAC (MP4 players know neither)
            rate = fmt.decoded_rate
            self.stream = container.add_stream("aac", rate=rate)
            ctx = self.stream.codec_context
            ctx.layout = "mono"
            ctx.bit_rate = 32_000
            decoder = audio_decoder(fmt)  # G.711 and G.722 are mono
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate, frame_size=1024)
            self.transcode = (decoder, resampler)
            self.time_base = Fraction(1, rate)

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


class Mp4Writer:
    """Mux H.264 access units and audio packets into an MP4 as they arrive (blocking: one thread at a time).

    The file is opened at the first keyframe (earlier pictures and audio are skipped: nothing
    decodes before it) and appears under `path` only when `close()` completes (written as a
    hidden .part, then renamed); `abort()` removes the partial file. Flag clips feed it a ring
    window at once (`write_clip`); call recordings feed it live, batch by batch.
    """

    def __init__(self, path: Path, audio_format: AudioFormat | None) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part")
        self._audio_format = audio_format
        self._container: av.container.OutputContainer | None = None
        self._vstream: av.stream.Stream | None = None
        self._aout: _AudioOut | None = None
        self._origin: tuple[float, int] | None = None  # arrival and pts of the first picture
        self._last_video: tuple[float, int] | None = None
        self._audio_shift: int | None = None
        self._audio_last = -1
        self._audio_stopped = False
        self.bytes = 0  # packet bytes muxed so far
        self.has_audio = False

    @property
    def started(self) -> bool:
        """Whether the first keyframe arrived (the file is open)."""
        return self._container is not None

    def add_video(self, at: float, vp: EncodedPacket) -> None:
        """One access unit that arrived at epoch `at`; raises ClipError (disk full, write failed)."""
        with self._errors():
            if self._container is None:
                if not vp.is_keyframe:
                    return
                width, height = _picture_size(vp.data)
                self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
                self._vstream = self._container.add_mux_stream("h264", width=width, height=height)
                self._vstream.time_base = VIDEO_TB
                if self._audio_format is not None:
                    self._aout = _AudioOut(self._container, self._audio_format)
                self._origin = (at, vp.pts)
            assert self._origin is not None and self._vstream is not None
            packet = av.Packet(vp.data)
            packet.pts = packet.dts = vp.pts - self._origin[1]
            packet.time_base = VIDEO_TB
            packet.is_keyframe = vp.is_keyframe
            packet.stream = self._vstream
            self._container.mux(packet)
            self._last_video = (at, vp.pts)
            self.bytes += len(vp.data)

    def add_audio(self, at: float, ap: AudioPacket) -> None:
        """One audio packet, placed by its arrival offset from the first picture, then on its own clock."""
        aout, container = self._aout, self._container
        if aout is None or container is None or self._origin is None or self._audio_stopped:
            return
        if ap.format != aout.format:
            self._audio_stopped = True  # the source changed its audio midway: keep the part that matches
            return
        rate = aout.format.sample_rate
        if self._audio_shift is None:
            self._audio_shift = round((at - self._origin[0]) * rate) - ap.pts
        scale = aout.time_base * rate  # source clock -> stream time base (Opus streams tick at 48 kHz)
        pts = round((ap.pts + self._audio_shift) / scale)
        if pts < 0 or pts <= self._audio_last:
            return  # before the first picture, or out of order
        self._audio_last = pts
        with self._errors():
            for packet in aout.packets(ap, pts):
                container.mux(packet)
        self.bytes += len(ap.data)
        self.has_audio = True

    def close(self) -> ClipInfo:
        """Finish the file and move it to `path`: what was written (ClipError "no_video" if nothing)."""
        container = self._container
        if container is None or self._origin is None or self._last_video is None:
            raise ClipError("no_video", "no pictures were received for this clip's time span")
        try:
            with self._errors():
                if self._aout is not None:
                    for packet in self._aout.flush():
                        container.mux(packet)
                container.close()
                self._container = None
                info = _describe(self._tmp, self._origin, self._last_video[1], self.has_audio)
                os.replace(self._tmp, self.path)
        except ClipError:
            self.abort()
            raise
        return info

    def abort(self) -> None:
        """Give up: close and remove the partial file (idempotent)."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except (OSError, av.error.FFmpegError):
                pass
        _unlink(self._tmp)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except ClipError:
            raise
        except (OSError, av.error.FFmpegError) as exc:
            errno = getattr(exc, "errno", None)
            if errno == 28 or "No space left" in str(exc):
                raise ClipError("disk_full", "the disk is full") from exc
            raise ClipError("write_failed", f"the clip could not be written: {exc.strerror or exc}") from exc


def write_clip(path: Path, entries: list[RingEntry]) -> ClipInfo:
    """Write `entries` (from PacketRing.window) to `path` atomically; raises ClipError.

    The file appears only when complete (written as a hidden .part, then renamed); on any
    failure the partial file is removed. ENOSPC is reported as reason "disk_full".
    """
    video = [(e.at, e.packet) for e in entries if isinstance(e.packet, EncodedPacket)]
    if not video or not video[0][1].is_keyframe:
        raise ClipError("no_video", "no pictures were received for this clip's time span")
    audio = [(e.at, e.packet) for e in entries if isinstance(e.packet, AudioPacket)]
    writer = Mp4Writer(path, audio[0][1].format if audio else None)
    try:
        for at, vp in video:
            writer.add_video(at, vp)
        for at, ap in audio:
            writer.add_audio(at, ap)
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def _describe(tmp: Path, origin: tuple[float, int], last_pts: int, has_audio: bool) -> ClipInfo:
    digest = hashlib.sha256()
    size = 0
    with open(tmp, "rb") as fh:
        while chunk := fh.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    start_at = origin[0]
    end_at = start_at + (last_pts - origin[1]) / 90_000
    return ClipInfo(start=start_at, end=end_at, size=size, sha256=digest.hexdigest(), has_audio=has_audio)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
