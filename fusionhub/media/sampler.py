"""KeyframeSampler: decode a keyframe now and then for analytics, and keep it for the snapshot.

Shared by every source (RTSP/file ingest threads, WHIP publishers' worker). Blocking (H.264
decode, JPEG encode): call it from a thread, never from the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import cast

import av
import cv2
import numpy as np
from av.video.codeccontext import VideoCodecContext
from av.video.reformatter import VideoReformatter

from .options import IngestOptions
from .urls import redact

log = logging.getLogger(__name__)

CLOCK_RATE = 90_000
# swscale runs each conversion on one thread: by default every scaler (two a camera) starts a
# slice-thread pool of its own, 780 idle threads at 280 cameras, and handing a 640x360 picture's
# slices to them and back cost 0.15-0.23 ms of CPU against 0.08 ms in the calling thread here
SCALE_THREADS = 1

# A consumer's small picture of each sample (analytics' motion-gate thumbnail), computed in the
# decode thread so the loop that receives the sample does not spend its own time on it.
Thumbnailer = Callable[[np.ndarray], np.ndarray]
SampleReady = Callable[[float, np.ndarray, np.ndarray | None], None]  # the sampler's: ts, frame, thumb
# what a source (camera or publisher) calls on the loop: source id, epoch seconds, BGR frame, thumbnail or None
SampleCallback = Callable[[int, float, np.ndarray, np.ndarray | None], None]


class KeyframeSampler:
    """Decodes at most one keyframe per sample interval of media time; keeps the latest.

    With `options.sampling.mode == "fps"` it decodes every packet it is offered instead (P-frames
    need their references) and samples `fps` frames a second of media time.
    """

    def __init__(
        self,
        camera_id: int,
        *,
        options: IngestOptions,
        on_sample: SampleReady,
        on_error: Callable[[], None] | None = None,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        """`on_sample(ts, frame, thumb)`: thumb is `thumbnailer(frame)`, or None without one."""
        self._camera_id = camera_id
        self._options = options
        # rate mode: every packet must be offered, not only keyframes (an attribute: read for every packet)
        self.wants_every_packet = options.sample_mode == "fps"
        self._on_sample = on_sample
        self._thumbnailer = thumbnailer
        self._on_error = on_error
        self._decoder: VideoCodecContext | None = None
        self._next_sample_pts: int | None = None  # media time, so GOP-sized intervals hold
        self._need_keyframe = True  # rate mode: a fresh decoder cannot start on a P-frame
        self.samples = 0
        # CPU seconds of this sampler's thread, for capacity planning (bench/analytics_capacity.py);
        # resize counts the downscale and the thumbnail
        self.decoded = 0
        self.decode_cpu_s = 0.0
        self.resize_cpu_s = 0.0
        # One scaler for every sample: `frame.reformat()` builds a new swscale context for each
        # frame (filter tables and all), 1.55 ms for 720p -> 640x360 here against 0.66 ms reused.
        self._scaler = VideoReformatter()
        # Whether anyone takes the samples (analytics, for a camera with zones). Without, keyframes
        # are only kept as they came, and a snapshot decodes the latest one when asked. Set from
        # any thread; the sampler's thread sees it at its next packet.
        self.sampling = True
        self._paused = False  # the sampler's thread: packets went by undecoded since the last sample
        # Snapshot: the latest decoded keyframe (or, while not sampling, the latest keyframe as it
        # came) and its JPEG, encoded lazily once per keyframe.
        self._snap_lock = threading.Lock()
        self._snap_frame: av.VideoFrame | None = None
        self._snap_packet: bytes | None = None
        self._snap_generation = 0
        self._jpeg_lock = threading.Lock()
        self._jpeg: tuple[int, bytes] | None = None
        self._snap_scaler = VideoReformatter()  # used under _jpeg_lock (snapshots come from worker threads)

    def reset(self) -> None:
        """A new stream (connection, file loop): the next frame decoded must be a keyframe.

        In keyframe mode every packet decoded is a keyframe that stands alone (SPS/PPS in-band),
        so the decoder is kept: building one costs more than the keyframe it decodes (6.8 against
        4.7 ms for 720p here), and a file camera starts a new stream at every loop. In rate mode
        the P-frames of the new stream must not meet the old one's pictures: a fresh decoder.
        """
        if self._decoder is None or self.wants_every_packet:
            self._decoder = self._new_decoder()
        self._need_keyframe = True

    def _new_decoder(self) -> VideoCodecContext:
        decoder = cast(VideoCodecContext, av.CodecContext.create("h264", "r"))
        # One thread, since frame threading would hold each frame back until later packets
        # arrive (a whole GOP late in keyframe mode, where only keyframes are fed).
        if self._options.sample_mode == "keyframes":
            decoder.skip_frame = "NONKEY"
            # A keyframe decoded alone is no reference for anything, so the deblocking filter
            # only polishes this one picture: skipping it saves ~16 % of the decode (3.5 -> 2.9 ms
            # for 720p here) for a picture within ~44 dB PSNR of the filtered one; detections on
            # it agree within score noise (measured on the capacity bench's clip).
            decoder.options = {"skip_loop_filter": "all"}
        decoder.thread_count = 1
        return decoder

    def is_due(self, pts: int) -> bool:
        """Whether a frame at `pts` is due for a sample."""
        due = self._next_sample_pts
        # pts rounding must not push a keyframe that is due a tick early to the next one
        return due is None or pts >= due - round(self._options.sample_interval_s * CLOCK_RATE) // 20

    def offer(self, data: bytes, pts: int, is_keyframe: bool = True, arrived: float | None = None) -> None:
        """A packet (Annex-B, SPS/PPS in-band before keyframes) at 90 kHz `pts`: decoded and sampled if due.

        `arrived` (epoch seconds) is when the packet came in, if it waited for a decode thread: the
        sample is stamped with it, so its age counts that wait; by default, now."""
        if not self.sampling:
            # nobody takes samples: no decode at all (a keyframe costs 4 ms at 720p), the
            # keyframe is kept for a snapshot
            self._paused = True
            if is_keyframe:
                with self._snap_lock:
                    self._snap_frame, self._snap_packet = None, data
                    self._snap_generation += 1
            return
        if self._paused:  # sampling again: rate mode's references are gone; start at a keyframe
            self._paused = False
            self.reset()
        # The interval is measured on the media clock, not the wall clock: a camera with a 1 s
        # GOP then yields one sample per keyframe even though packets arrive with jitter.
        every = self.wants_every_packet
        interval = round(self._options.sample_interval_s * CLOCK_RATE)
        due = self._next_sample_pts
        is_due = self.is_due(pts)
        if not every and (not is_keyframe or not is_due):
            return
        if self._decoder is None:
            self._decoder = self._new_decoder()
        if self._need_keyframe and not is_keyframe:
            return
        started = time.thread_time()
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.error.FFmpegError as exc:
            if self._on_error is not None:
                self._on_error()
            log.debug("[camera %d] frame did not decode: %s", self._camera_id, redact(str(exc)))
            self._decoder = self._new_decoder()
            self._need_keyframe = True
            return
        finally:
            self.decode_cpu_s += time.thread_time() - started
            self.decoded += 1
        self._need_keyframe = False
        if not frames or not is_due:
            return
        frame = frames[-1]
        # rate mode keeps its cadence (due + interval); a late or first sample restarts it from now
        self._next_sample_pts = due + interval if every and due is not None and pts - due < interval else pts + interval
        with self._snap_lock:
            self._snap_frame, self._snap_packet = frame, None
            self._snap_generation += 1
        self.samples += 1
        started = time.thread_time()
        small = downscale(frame, self._options.sample_max_side, self._scaler)
        thumb = self._thumbnailer(small) if self._thumbnailer is not None else None
        self.resize_cpu_s += time.thread_time() - started
        self._on_sample(time.time() if arrived is None else arrived, small, thumb)

    def snapshot_jpeg(self) -> bytes | None:
        """JPEG of the latest keyframe (full size); encoded at most once per keyframe. While not
        sampling, the kept keyframe is decoded here, by a decoder of its own.

        Thread-safe and blocking (decoding, JPEG encoding): call it from a worker thread.
        """
        with self._snap_lock:
            frame, packet, generation = self._snap_frame, self._snap_packet, self._snap_generation
        if frame is None and packet is None:
            return None
        with self._jpeg_lock:
            if self._jpeg is not None and self._jpeg[0] == generation:
                return self._jpeg[1]
            if frame is None:
                frame = self._decode_kept(packet)
                if frame is None:
                    return None
            ok, buf = cv2.imencode(
                ".jpg",
                self._snap_scaler.reformat(frame, format="bgr24", threads=SCALE_THREADS).to_ndarray(),
                [cv2.IMWRITE_JPEG_QUALITY, self._options.jpeg_quality],
            )
            if not ok:
                return None
            self._jpeg = (generation, buf.tobytes())
            return self._jpeg[1]

    def _decode_kept(self, packet: bytes | None) -> av.VideoFrame | None:
        """A kept keyframe as a picture, by a fresh decoder (the sampler's belongs to its thread)."""
        if packet is None:
            return None
        decoder = cast(VideoCodecContext, av.CodecContext.create("h264", "r"))
        decoder.thread_count = 1
        try:
            frames = decoder.decode(av.Packet(packet)) + decoder.decode(None)
        except av.error.FFmpegError as exc:
            log.debug("[camera %d] kept keyframe did not decode: %s", self._camera_id, redact(str(exc)))
            return None
        return frames[-1] if frames else None


def downscale(frame: av.VideoFrame, max_side: int, scaler: VideoReformatter | None = None) -> np.ndarray:
    """BGR uint8 copy of `frame` whose longer side is at most `max_side` pixels.

    One swscale pass scales and converts from YUV at once (0.4 ms for 720p to 640x360 here,
    against 0.6 ms to convert the full frame to BGR before scaling it with OpenCV). Pass the
    same `scaler` for a camera's frames (one thread at a time): it keeps the swscale context.
    """
    w, h = frame.width, frame.height
    longest = max(h, w)
    scaler = scaler or VideoReformatter()
    if longest <= max_side:
        return scaler.reformat(frame, format="bgr24", threads=SCALE_THREADS).to_ndarray()
    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return scaler.reformat(frame, size[0], size[1], "bgr24", interpolation="AREA", threads=SCALE_THREADS).to_ndarray()
