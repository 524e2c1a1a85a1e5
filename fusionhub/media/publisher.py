"""PublisherSource: a WHIP publisher's encoded frames as a source like any camera.

It turns the frames a WhipSession taps (H.264 Annex-B, Opus/G.711, RTP timestamps) into the
same EncodedPacket/AudioPacket stream an RTSP ingest produces, for the same SourceOutputs
(WHEP viewers, audio listeners, clip ring), and samples a keyframe now and then for analytics
and the snapshot (decoded in a worker thread, latest keyframe wins).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np

from fusionhub.media.annexb import IDR, PPS, SPS, START
from fusionhub.media.options import IngestOptions
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket
from fusionhub.media.sampler import KeyframeSampler, SampleCallback, Thumbnailer
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class _RtpClock:
    """32-bit RTP timestamps to a monotonic count from 0 (wrap-safe; steps back become +1)."""

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._out = 0

    def map(self, raw: int) -> int:
        if self._last_raw is not None:
            delta = (raw - self._last_raw) & 0xFFFFFFFF
            self._out += delta if 0 < delta < 0x80000000 else 1
        self._last_raw = raw
        return self._out


def nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B access unit with 4-byte start codes (as aiortc depayloads)."""
    return [nal[0] & 0x1F for nal in data.split(START) if nal]


class PublisherSource:
    """Feeds one publisher's outputs; samples keyframes for analytics. Owns its sampling task."""

    def __init__(
        self,
        source_id: int,
        name: str,
        *,
        outputs: SourceOutputs,
        options: IngestOptions,
        on_sample: SampleCallback,
        on_online: Callable[[], None],
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        self.source_id = source_id
        self.name = name
        self._outputs = outputs
        self._on_sample = on_sample
        self._on_online = on_online
        self._loop = asyncio.get_running_loop()
        self._sampler = KeyframeSampler(source_id, options=options, on_sample=self._post_sample, thumbnailer=thumbnailer)
        self._keyframes: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(maxsize=1)  # latest keyframe wins
        self._task: asyncio.Task[None] | None = asyncio.create_task(self._sample_loop(), name=f"publisher-{name}-sampler")
        self._video_clock = _RtpClock()
        self._audio_clock = _RtpClock()
        self._parameter_sets: bytes | None = None  # the latest SPS+PPS, for keyframes sent without them
        self.audio_format: AudioFormat | None = None
        self.packets = 0
        self.keyframes = 0
        self.audio_packets = 0
        self._stopped = False

    def on_video(self, data: bytes, rtp_timestamp: int) -> None:
        """One complete H.264 access unit from the WHIP tap (loop thread)."""
        if self._stopped or not data:
            return
        types = nal_types(data)
        if SPS in types and PPS in types:
            self._parameter_sets = b"".join(START + n for n in data.split(START) if n and n[0] & 0x1F in (SPS, PPS))
        key = IDR in types
        if key and SPS not in types and self._parameter_sets is not None:
            data = self._parameter_sets + data  # like dump_extra for cameras: every keyframe stands alone
        pts = self._video_clock.map(rtp_timestamp)
        self.packets += 1
        if self.packets == 1:
            self._on_online()
        self._outputs.on_packet(EncodedPacket(data=data, pts=pts, is_keyframe=key))
        if key:
            self.keyframes += 1
            if self._keyframes.full():
                self._keyframes.get_nowait()
            self._keyframes.put_nowait((data, pts))

    def on_audio(self, data: bytes, rtp_timestamp: int) -> None:
        """One Opus/G.711 frame from the WHIP tap (loop thread)."""
        fmt = self.audio_format
        if self._stopped or fmt is None or not data:
            return
        self.audio_packets += 1
        self._outputs.on_audio(AudioPacket(data=data, pts=self._audio_clock.map(rtp_timestamp), format=fmt))

    async def _sample_loop(self) -> None:
        while True:
            data, pts = await self._keyframes.get()
            try:
                await asyncio.to_thread(self._sampler.offer, data, pts)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publisher %s: sampling failed", self.name)

    def _post_sample(self, ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver_sample, ts, frame, thumb)
        except RuntimeError:  # the loop is closed
            pass

    def _deliver_sample(self, ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        if not self._stopped:
            self._on_sample(self.source_id, ts, frame, thumb)

    def latest_keyframe_jpeg(self) -> bytes | None:
        """JPEG of the latest sampled keyframe (blocking: run in a thread)."""
        return self._sampler.snapshot_jpeg()

    async def stop(self) -> None:
        """Stop sampling (safe to call twice)."""
        self._stopped = True
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def stats(self) -> dict[str, object]:
        """Counters for monitoring."""
        return {
            "packets": self.packets,
            "keyframes": self.keyframes,
            "audio_packets": self.audio_packets,
            "samples": self._sampler.samples,
        }
