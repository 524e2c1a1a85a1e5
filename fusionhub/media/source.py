"""The machinery every camera source shares: its thread, health states, reconnects, hand-off.

A source pulls packets in a dedicated thread (PyAV blocks) and hands them, the analytics samples
and its status changes to the event loop through a LoopHandoff (batched wake-ups, in order). Subclasses say how to open
the media (`_open`) and whether to pace it in real time; everything else lives here, once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import av
import numpy as np

from fusionhub.signaling.messages import CameraStatus

from .annexb import MalformedPacket
from .audiopipe import AudioPipeline, pick_audio_stream
from .handoff import LoopHandoff
from .health import SourceHealth, State
from .options import IngestOptions
from .packets import AudioPacket, EncodedPacket, PacketSink
from .pipeline import CLOCK_RATE, IngestStats, PacketPipeline
from .sampler import SampleCallback, Thumbnailer
from .urls import redact

log = logging.getLogger(__name__)

StatusCallback = Callable[[CameraStatus], None]

# Packets posted to the loop but not yet delivered. Past this the loop is stalled: drop until
# the next keyframe (a viewer cannot use P-frames after a gap anyway), counting the drops.
MAX_PENDING_PACKETS = 300
MAX_PENDING_AUDIO = 200  # audio is dropped (not queued) past this; it has no keyframes to wait for
# A real-time source more than this far behind its clock resets the clock instead of bursting.
_MAX_LAG_S = 1.0


class SourceFailure(Exception):
    """A session ended for a reason a status can show (one of CameraStatus's reasons)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


class ThreadedSource(ABC):
    """Base of CameraIngest and FileLoopSource: one thread per source, reconnecting forever."""

    _realtime = False  # pace packets by pts (files); live cameras pace themselves

    def __init__(
        self,
        camera_id: int,
        *,
        sink: PacketSink,
        on_sample: SampleCallback,
        on_status: StatusCallback,
        loop: asyncio.AbstractEventLoop,
        options: IngestOptions,
        handoff: LoopHandoff | None = None,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._sink = sink
        self._on_sample = on_sample
        self._on_status = on_status
        # shared by a gateway's sources, so that one loop wake-up carries many cameras' packets
        self._handoff = handoff if handoff is not None else LoopHandoff(loop)
        self._options = options
        self._stats = IngestStats()
        self._pipeline = PacketPipeline(
            camera_id, options=options, stats=self._stats, on_sample=self._post_sample, thumbnailer=thumbnailer
        )
        self._audio = AudioPipeline(camera_id)
        self._audio_posted = 0  # written by the thread only
        self._audio_delivered = 0  # written by the loop only
        self._status = CameraStatus(camera_id=camera_id, state="stopped", since=time.time())
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._stopped = False  # loop side: nothing is delivered once stop() began
        # Thread side: the last state reported, the backoff and the flapping-log policy.
        self._health = SourceHealth(camera_id, options, self._describe, self._redact)
        # Loop stall detection: posted is written by the thread only, delivered by the loop only.
        self._posted = 0
        self._delivered = 0
        self._awaiting_keyframe = False
        self._clock: tuple[float, int] | None = None  # real-time pacing: (monotonic, pts)

    # -- public, on the loop ------------------------------------------------------------------

    @property
    def status(self) -> CameraStatus:
        """The latest status, as delivered to on_status."""
        return self._status

    @property
    def stats(self) -> IngestStats:
        """A copy of the counters (packets, keyframes, samples, reconnects, drops)."""
        return replace(self._stats)

    def start(self) -> None:
        """Start pulling in the source's own thread (returns at once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"media-source-{self.camera_id}", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread and wait for it without blocking the loop. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_event.set()
        thread = self._thread
        if thread is not None:
            # A blocked read returns within options.timeout_s (FFmpeg's socket timeout).
            await asyncio.to_thread(thread.join)
        self._set_status(CameraStatus(camera_id=self.camera_id, state="stopped", since=time.time()))

    def latest_keyframe_jpeg(self) -> bytes | None:
        """JPEG of the latest keyframe, or None before the first. Blocking: run in a thread."""
        return self._pipeline.snapshot_jpeg()

    def set_sampling(self, wanted: bool) -> None:
        """Whether anyone takes this camera's samples; without, nothing is decoded (PacketPipeline.set_sampling)."""
        self._pipeline.set_sampling(wanted)

    # -- subclass hooks -------------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> AbstractContextManager[av.container.InputContainer]:
        """Open the media (in the thread); raise SourceFailure with a reason on failure."""

    @abstractmethod
    def _describe(self) -> str:
        """What to call the source in logs (no credentials)."""

    def _classify(self, exc: Exception, *, opening: bool) -> str:
        """The status reason for an error that ended a session."""
        return "unreachable" if opening else "ended"

    def _redact(self, text: str) -> str:
        """Remove credentials from a message before it is logged."""
        return redact(text)

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        self._report("connecting", None)
        while not self._stop_event.is_set():
            try:
                self._session()
                reason, detail = "ended", "stream ended"
            except SourceFailure as failure:
                reason, detail = failure.reason, failure.detail
            except Exception as exc:  # a bug or an unforeseen PyAV error: log it, keep going
                reason, detail = "ended", "".join(traceback.format_exception(exc))
            if self._stop_event.is_set():
                break
            self._report("offline", reason, detail)
            if self._stop_event.wait(self._health.next_delay()):
                break
            self._stats.reconnects += 1

    def _session(self) -> None:
        """One connection (or one file loop pass series) until it ends or fails."""
        try:
            opened = self._open()
        except av.error.FFmpegError as exc:
            raise SourceFailure(self._classify(exc, opening=True), str(exc)) from None
        self._clock = None
        with opened as container:
            for stream, packets in self._passes(container):
                self._pump(stream, packets)
                if self._stop_event.is_set():
                    return

    def _passes(self, container: av.container.InputContainer) -> Iterator[tuple[av.VideoStream, Iterator[av.Packet]]]:
        """The demux passes of one session: one for a camera; a file source loops forever."""
        stream = self._video_stream(container)
        audio = pick_audio_stream(container) if hasattr(self._sink, "on_audio") else None
        self._audio.begin(audio)
        yield stream, container.demux(stream) if audio is None else container.demux(stream, audio)

    def _video_stream(self, container: av.container.InputContainer) -> av.VideoStream:
        if not container.streams.video:
            raise SourceFailure("no_video", "no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise SourceFailure("unsupported_codec", f"codec {stream.codec_context.name}")
        return stream

    def _pump(self, stream: av.VideoStream, packets: Iterator[av.Packet]) -> None:
        last_key = last_video = time.monotonic()
        try:
            self._pipeline.begin(stream)
            for packet in packets:
                if self._stop_event.is_set():
                    return
                if not packet.size:
                    continue  # PyAV's flush packet at end of stream
                if packet.stream.type == "audio":
                    self._post_audio(packet)
                    # Audio keeps the read from timing out: a camera whose video died while its
                    # microphone goes on must not stay "online" with a frozen picture.
                    silent = time.monotonic() - last_video
                    if silent > self._options.keyframe_timeout_s:
                        raise SourceFailure("no_video", f"audio but no video for {silent:.0f} s")
                    continue
                last_video = time.monotonic()
                encoded = self._pipeline.push(packet)
                if encoded is None:
                    continue
                if self._realtime:
                    self._pace(encoded.pts)
                    if self._stop_event.is_set():
                        return
                self._post_packet(encoded)
                now = time.monotonic()
                if encoded.is_keyframe:
                    last_key = now
                if now - last_key > self._options.keyframe_timeout_s:
                    self._report("degraded", "no_keyframe")
                else:
                    self._report("online", None)
                self._health.check_stable(now)
        except av.error.FFmpegError as exc:
            raise SourceFailure(self._classify(exc, opening=False), str(exc)) from None
        except MalformedPacket as exc:
            raise SourceFailure("ended", str(exc)) from None

    def _pace(self, pts: int) -> None:
        """Wait until `pts` is due on the source's real-time clock."""
        now = time.monotonic()
        clock = self._clock
        if clock is None:
            self._clock = (now, pts)
            return
        due = clock[0] + (pts - clock[1]) / CLOCK_RATE
        if now - due > _MAX_LAG_S:
            self._clock = (now, pts)  # fell far behind (busy machine): restart, do not burst
        elif due > now:
            self._stop_event.wait(due - now)

    # -- hand-off to the loop -------------------------------------------------------------------

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> bool:
        if not self._handoff.post(fn, *args):  # the loop is closed: nobody is listening any more
            self._stop_event.set()
            return False
        return True

    def _post_packet(self, packet: EncodedPacket) -> None:
        if self._awaiting_keyframe and not packet.is_keyframe:
            self._stats.dropped_packets += 1
            return
        if self._posted - self._delivered >= MAX_PENDING_PACKETS:
            self._awaiting_keyframe = True
            self._stats.dropped_packets += 1
            return
        self._awaiting_keyframe = False
        if self._call_in_loop(self._deliver_packet, packet):
            self._posted += 1
            self._stats.packets += 1

    def _deliver_packet(self, packet: EncodedPacket) -> None:
        self._delivered += 1
        if not self._stopped:
            self._sink.on_packet(packet)

    def _post_audio(self, packet: av.Packet) -> None:
        audio = self._audio.push(packet)
        if audio is None:
            return
        if self._audio_posted - self._audio_delivered >= MAX_PENDING_AUDIO:
            self._stats.dropped_packets += 1
            return
        if self._call_in_loop(self._deliver_audio, audio):
            self._audio_posted += 1

    def _deliver_audio(self, packet: AudioPacket) -> None:
        self._audio_delivered += 1
        on_audio = getattr(self._sink, "on_audio", None)
        if not self._stopped and on_audio is not None:
            on_audio(packet)

    def _post_sample(self, epoch_ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        self._call_in_loop(self._deliver_sample, epoch_ts, frame, thumb)

    def _deliver_sample(self, epoch_ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        if not self._stopped:
            self._on_sample(self.camera_id, epoch_ts, frame, thumb)

    def _report(self, state: State, reason: str | None, detail: str = "") -> None:
        """Post a status change (thread side); repeats of the current state are not posted."""
        status = self._health.report(state, reason, detail)
        if status is not None:
            self._call_in_loop(self._set_status, status)

    def _set_status(self, status: CameraStatus) -> None:
        if self._stopped and status.state != "stopped":
            return
        self._status = status
        self._on_status(status)
