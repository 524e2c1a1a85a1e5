"""The per-source packet pipeline shared by every source: Annex-B, 90 kHz pts, samples, snapshot.

Runs in the source's thread (never on the event loop). A source calls `begin()` for each new
connection (or file loop) and `push()` for each demuxed packet; the pipeline keeps pts
monotonic across segments, decodes a keyframe now and then for analytics, and keeps the
latest decoded keyframe for the snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import cv2
import numpy as np
from av.video.codeccontext import VideoCodecContext

from .options import IngestOptions
from .packets import EncodedPacket
from .urls import redact

log = logging.getLogger(__name__)

CLOCK_RATE = 90_000  # RTP video clock: every EncodedPacket.pts is on it
_DEFAULT_GAP = CLOCK_RATE // 30  # frame spacing assumed when the stream does not say
# A jump larger than this between consecutive packets is a discontinuity (the camera reset its
# clock): the segment is rebased instead of passing a multi-second hole or a step back on.
_MAX_JUMP = 10 * CLOCK_RATE


@dataclass(slots=True)
class IngestStats:
    """Counters of one source, since it was started."""

    packets: int = 0  # handed to the sink
    keyframes: int = 0
    samples: int = 0  # frames handed to on_sample
    reconnects: int = 0
    dropped_packets: int = 0  # dropped because the event loop fell behind
    sample_errors: int = 0  # keyframes that failed to decode


def _annexb_filter(stream: av.VideoStream) -> av.bitstream.BitStreamFilterContext:
    """A filter that makes every keyframe a self-contained Annex-B access unit with SPS/PPS.

    MP4 files carry length-prefixed NAL units and an avcC record (first byte 1):
    h264_mp4toannexb converts them and inserts SPS/PPS before each IDR. RTSP is already Annex-B
    but many cameras put SPS/PPS only in the SDP: dump_extra prepends them to each keyframe.
    """
    extradata = stream.codec_context.extradata or b""
    name = "h264_mp4toannexb" if extradata[:1] == b"\x01" else "dump_extra"
    return av.bitstream.BitStreamFilterContext(name, stream)


class PacketPipeline:
    """Turns one source's demuxed packets into EncodedPackets, samples and snapshots."""

    def __init__(
        self,
        camera_id: int,
        *,
        options: IngestOptions,
        stats: IngestStats,
        on_sample: Callable[[float, np.ndarray], None],
    ) -> None:
        self._camera_id = camera_id
        self._options = options
        self._stats = stats
        self._on_sample = on_sample
        self._bsf: av.bitstream.BitStreamFilterContext | None = None
        self._decoder: VideoCodecContext | None = None
        self._time_base = Fraction(1, CLOCK_RATE)
        # pts mapping of the current segment: out = base + (source_pts - origin)
        self._gap = _DEFAULT_GAP
        self._origin: int | None = None
        self._base = 0
        self._segment_started = False
        self._last_out: int | None = None
        self._next_sample_pts: int | None = None  # media time, so GOP-sized intervals hold
        # Snapshot: the latest decoded keyframe and its JPEG, encoded lazily once per keyframe.
        self._snap_lock = threading.Lock()
        self._snap_frame: av.VideoFrame | None = None
        self._snap_generation = 0
        self._jpeg_lock = threading.Lock()
        self._jpeg: tuple[int, bytes] | None = None

    def begin(self, stream: av.VideoStream) -> None:
        """Start a new segment (connection or file loop) whose pts continue after the last one."""
        self._bsf = _annexb_filter(stream)
        self._decoder = self._new_decoder()
        self._time_base = stream.time_base or Fraction(1, CLOCK_RATE)
        rate = stream.average_rate or stream.guessed_rate
        if rate and 1 <= rate <= 240:
            self._gap = round(CLOCK_RATE / rate)
        self._origin = None
        self._segment_started = False
        self._base = 0 if self._last_out is None else self._last_out + self._gap

    def push(self, packet: av.Packet) -> list[EncodedPacket]:
        """Filter one demuxed packet: zero or more EncodedPackets, in order."""
        if self._bsf is None:
            raise RuntimeError("begin() must be called before push()")
        out: list[EncodedPacket] = []
        for filtered in self._bsf.filter(packet):
            data = bytes(filtered)
            if not data:
                continue
            key = bool(filtered.is_keyframe)
            ts = filtered.pts if filtered.pts is not None else filtered.dts
            pts = self._map_pts(ts)
            out.append(EncodedPacket(data=data, pts=pts, is_keyframe=key))
            if key:
                self._stats.keyframes += 1
                self._maybe_sample(data, pts)
        return out

    def _map_pts(self, ts: int | None) -> int:
        """Source timestamp -> monotonic 90 kHz pts. Untimed packets (an RTSP stream's first
        keyframe often has none) are placed one frame after the previous packet, not dropped."""
        last = self._last_out
        src = None if ts is None else int(ts * self._time_base * CLOCK_RATE)
        if src is None:
            pts = self._base if not self._segment_started or last is None else last + self._gap
        else:
            if self._origin is None:
                self._origin = src
                if self._segment_started and last is not None:
                    self._base = last + self._gap  # follows the segment's untimed packets
            pts = self._base + (src - self._origin)
            if last is not None and abs(pts - last) > _MAX_JUMP:
                log.debug("[camera %d] pts discontinuity, rebasing", self._camera_id)
                self._origin, self._base = src, last + self._gap
                pts = self._base
        if last is not None and pts <= last:
            pts = last + 1  # B-frame-free streams only step back by jitter; keep it monotonic
        self._segment_started = True
        self._last_out = pts
        return pts

    def _new_decoder(self) -> VideoCodecContext:
        decoder = cast(VideoCodecContext, av.CodecContext.create("h264", "r"))
        # Only keyframes are fed; one thread, since frame threading would hold each frame
        # back until later packets arrive (a whole GOP late here).
        decoder.skip_frame = "NONKEY"
        decoder.thread_count = 1
        return decoder

    def _maybe_sample(self, data: bytes, pts: int) -> None:
        # The interval is measured on the media clock, not the wall clock: a camera with a 1 s
        # GOP then yields one sample per keyframe even though packets arrive with jitter.
        due = self._next_sample_pts
        if (due is not None and pts < due) or self._decoder is None:
            return
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.error.FFmpegError as exc:
            self._stats.sample_errors += 1
            log.debug("[camera %d] keyframe did not decode: %s", self._camera_id, redact(str(exc)))
            self._decoder = self._new_decoder()
            return
        if not frames:
            return
        frame = frames[-1]
        self._next_sample_pts = pts + round(self._options.sample_min_interval_s * CLOCK_RATE)
        with self._snap_lock:
            self._snap_frame = frame
            self._snap_generation += 1
        self._stats.samples += 1
        self._on_sample(time.time(), downscale(frame, self._options.sample_max_side))

    def snapshot_jpeg(self) -> bytes | None:
        """JPEG of the latest decoded keyframe (full size); encoded at most once per keyframe.

        Thread-safe and blocking (JPEG encoding): call it from a worker thread.
        """
        with self._snap_lock:
            frame, generation = self._snap_frame, self._snap_generation
        if frame is None:
            return None
        with self._jpeg_lock:
            if self._jpeg is not None and self._jpeg[0] == generation:
                return self._jpeg[1]
            ok, buf = cv2.imencode(
                ".jpg",
                frame.to_ndarray(format="bgr24"),
                [cv2.IMWRITE_JPEG_QUALITY, self._options.jpeg_quality],
            )
            if not ok:
                return None
            self._jpeg = (generation, buf.tobytes())
            return self._jpeg[1]


def downscale(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    """BGR uint8 copy of `frame` whose longer side is at most `max_side` pixels."""
    bgr = frame.to_ndarray(format="bgr24")
    h, w = bgr.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return bgr
    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
