"""The per-source packet pipeline shared by every source: Annex-B, 90 kHz pts, samples, snapshot.

Runs in the source's thread (never on the event loop). A source calls `begin()` for each new
connection (or file loop) and `push()` for each demuxed packet; the pipeline keeps pts
monotonic across segments, decodes a keyframe now and then for analytics, and keeps the
latest decoded keyframe for the snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from .annexb import AnnexB
from .options import IngestOptions
from .packets import EncodedPacket
from .sampler import CLOCK_RATE, KeyframeSampler, SampleReady, Thumbnailer, downscale

__all__ = ["CLOCK_RATE", "IngestStats", "PacketPipeline", "downscale"]

log = logging.getLogger(__name__)

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
    decoded: int = 0  # frames decoded for sampling (keyframes only, or every frame in rate mode)
    decode_cpu_s: float = 0.0  # CPU seconds spent decoding them
    resize_cpu_s: float = 0.0  # CPU seconds spent scaling samples and converting them to BGR
    decode_skipped: int = 0  # event-loop engine: packets not sampled because the decode pool was behind
    reads: int = 0  # event-loop engine: socket reads (fewer than packets while reads are batched)


def _scaled(ts: int, num: int, den: int) -> int:
    """int(ts * num / den) exactly (truncated toward zero, like int() of a Fraction)."""
    value = ts * num
    return value // den if value >= 0 else -(-value // den)


class PacketPipeline:
    """Turns one source's demuxed packets into EncodedPackets, samples and snapshots."""

    def __init__(
        self,
        camera_id: int,
        *,
        options: IngestOptions,
        stats: IngestStats,
        on_sample: SampleReady,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        self._camera_id = camera_id
        self._options = options
        self._stats = stats
        self._on_sample = on_sample
        self._annexb: AnnexB | None = None
        self._sampler = KeyframeSampler(
            camera_id, options=options, on_sample=on_sample, on_error=self._sample_error, thumbnailer=thumbnailer
        )
        # source ticks -> 90 kHz as an integer ratio (Fraction arithmetic cost ~6 µs a packet here)
        self._tb_num, self._tb_den = 1, 1
        # pts mapping of the current segment: out = base + (source_pts - origin)
        self._gap = _DEFAULT_GAP
        self._origin: int | None = None
        self._base = 0
        self._segment_started = False
        self._last_out: int | None = None

    def begin(self, stream: av.VideoStream) -> None:
        """Start a new segment (connection or file loop) whose pts continue after the last one."""
        # raises MalformedPacket for a broken avcC record (the source ends the session)
        self._annexb = AnnexB(stream.codec_context.extradata)
        self._sampler.reset()
        self._begin_segment(stream.time_base or Fraction(1, CLOCK_RATE), stream.average_rate or stream.guessed_rate)

    def begin_rtp(self, rate: float | None) -> None:
        """Start a new segment of RTP access units (90 kHz timestamps) for `push_access_unit`.

        The sampler is not reset here: the event-loop engine decodes in a pool thread and resets
        it there, between two decodes (`reset_sampler`)."""
        self._annexb = None
        self._begin_segment(Fraction(1, CLOCK_RATE), rate)

    def _begin_segment(self, time_base: Fraction, rate: Fraction | float | None) -> None:
        self._tb_num, self._tb_den = time_base.numerator * CLOCK_RATE, time_base.denominator
        if rate and 1 <= rate <= 240:
            self._gap = round(CLOCK_RATE / rate)
        self._origin = None
        self._segment_started = False
        self._base = 0 if self._last_out is None else self._last_out + self._gap

    def push(self, packet: av.Packet) -> EncodedPacket | None:
        """One demuxed packet as an Annex-B EncodedPacket; None if it held no NAL unit.

        Raises MalformedPacket for a packet whose NAL lengths do not add up."""
        annexb = self._annexb
        if annexb is None:
            raise RuntimeError("begin() must be called before push()")
        key = bool(packet.is_keyframe)
        data = annexb.convert(packet, key)
        if not data:
            return None
        ts = packet.pts
        pts = self._map_pts(ts if ts is not None else packet.dts)
        if key:
            self._stats.keyframes += 1
        if self.wants_sample(key):
            self._maybe_sample(data, pts, key)
        return EncodedPacket(data=data, pts=pts, is_keyframe=key)

    def push_access_unit(self, data: bytes, timestamp: int, key: bool) -> EncodedPacket:
        """An access unit already in Annex-B (keyframes with their SPS/PPS) at an unwrapped RTP
        timestamp, as an EncodedPacket on the monotonic pts clock. Does not sample: the caller
        offers it to `sample()` in a thread when `wants_sample(key)`."""
        pts = self._map_pts(timestamp)
        if key:
            self._stats.keyframes += 1
        return EncodedPacket(data=data, pts=pts, is_keyframe=key)

    def wants_sample(self, key: bool) -> bool:
        """Whether a packet must be offered to the sampler (keyframes; every packet in rate mode while sampling)."""
        return key or (self._sampler.wants_every_packet and self._sampler.sampling)

    def sample_due(self, pts: int) -> bool:
        """Whether a keyframe at `pts` would be sampled (always true in rate mode, where every packet
        is decoded), or kept for snapshots while not sampling. Read from another thread than the
        sampler's: a hint that may be one sample stale."""
        sampler = self._sampler
        return sampler.wants_every_packet or not sampler.sampling or sampler.is_due(pts)

    def set_sampling(self, wanted: bool) -> None:
        """Whether anyone takes this source's samples. Without, nothing is decoded: keyframes are
        kept as they come, and a snapshot decodes the latest when asked. From any thread."""
        self._sampler.sampling = wanted

    def sample(self, data: bytes, pts: int, key: bool, arrived: float | None = None) -> None:
        """Offer a packet that came in at epoch `arrived` to the sampler (decodes when due). Blocking: call it from a thread."""
        self._maybe_sample(data, pts, key, arrived)

    def reset_sampler(self) -> None:
        """A new stream: the sampler's next frame must be a keyframe. From the sampling thread."""
        self._sampler.reset()

    def _map_pts(self, ts: int | None) -> int:
        """Source timestamp -> monotonic 90 kHz pts. Untimed packets (an RTSP stream's first
        keyframe often has none) are placed one frame after the previous packet, not dropped."""
        last = self._last_out
        src = None if ts is None else _scaled(ts, self._tb_num, self._tb_den)
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

    def _sample_error(self) -> None:
        self._stats.sample_errors += 1

    def _maybe_sample(self, data: bytes, pts: int, key: bool, arrived: float | None = None) -> None:
        sampler, stats = self._sampler, self._stats
        before = sampler.samples
        sampler.offer(data, pts, key, arrived)
        stats.samples += sampler.samples - before
        stats.decoded, stats.decode_cpu_s, stats.resize_cpu_s = sampler.decoded, sampler.decode_cpu_s, sampler.resize_cpu_s

    def snapshot_jpeg(self) -> bytes | None:
        """JPEG of the latest keyframe (full size); encoded at most once per keyframe.

        Thread-safe and blocking (decoding, JPEG encoding): call it from a worker thread.
        """
        return self._sampler.snapshot_jpeg()
