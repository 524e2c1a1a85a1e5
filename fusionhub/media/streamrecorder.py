"""StreamRecorder: a live source's packets, as relayed, remuxed into an MP4 (no decode, no encode).

Used for video calls: each party's publisher is recorded from its own relays, like one more
viewer (a RelaySubscription for video, an AudioSubscription for audio, each bounded with the
relays' drop policies). Packets are stamped with their arrival time, collected on the loop and
handed to `Mp4Writer` (media/clipwriter.py, the muxer flag clips use) in a worker thread every
`flush_interval_s`. Between flushes at most `max_pending_packets` wait: beyond that, video
skips to the next keyframe and audio drops, both counted. The recording ends when the source's
relays close (the publisher went) or on `stop()`; the file is then finished, hashed, and
reported with `on_done`. Recordings stop growing at `max_bytes` (kept, marked truncated).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fusionhub.media.audio import AudioSubscription
from fusionhub.media.clipwriter import ClipError, ClipInfo, Mp4Writer
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.packets import AudioPacket, EncodedPacket
from fusionhub.media.recording import CallRecordingConfig
from fusionhub.media.relay import RelaySubscription

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamRecording:
    """A finished recording: its id, file (relative to the data directory) and what was written."""

    recording_id: str
    path: str
    info: ClipInfo
    truncated: bool


DoneCallback = Callable[[StreamRecording], Awaitable[None]]


class StreamRecorder:
    """Records one source's relayed packets into one MP4; owns its three tasks."""

    def __init__(
        self, label: str, outputs: SourceOutputs, *, data_dir: Path, config: CallRecordingConfig, on_done: DoneCallback
    ) -> None:
        self.label = label
        self.recording_id = uuid.uuid4().hex
        day = datetime.now(UTC).strftime("%Y%m%d")
        self.path = f"{config.subdir}/{day}/{self.recording_id}.mp4"  # server-generated, never from a client
        self._file = Path(data_dir) / self.path
        self._config = config
        self._on_done = on_done
        self._writer = Mp4Writer(self._file, outputs.audio.format)
        self._video: RelaySubscription = outputs.video.subscribe()
        self._audio: AudioSubscription | None = outputs.audio.subscribe() if outputs.audio.format is not None else None
        self._pending: list[tuple[float, EncodedPacket | AudioPacket]] = []
        self._need_keyframe = False
        self._ended = asyncio.Event()
        self.dropped = 0
        self.truncated = False
        self._tasks = [asyncio.create_task(self._read_video(), name=f"record-{label}-video")]
        if self._audio is not None:
            self._tasks.append(asyncio.create_task(self._read_audio(self._audio), name=f"record-{label}-audio"))
        self._write_task: asyncio.Task[None] = asyncio.create_task(self._write_loop(), name=f"record-{label}-write")

    @property
    def done(self) -> bool:
        """True once the file is finished (or given up)."""
        return self._write_task.done()

    def _take(self, packet: EncodedPacket | AudioPacket) -> None:
        if self.truncated:
            return
        if isinstance(packet, EncodedPacket):
            if self._need_keyframe and not packet.is_keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        if len(self._pending) >= self._config.max_pending_packets:
            self.dropped += 1
            if isinstance(packet, EncodedPacket):
                self._need_keyframe = True  # a P-frame without its predecessor would smear: wait for a keyframe
            return
        self._pending.append((time.time(), packet))

    async def _read_video(self) -> None:
        while (item := await self._video.get()) is not None:
            self._take(item.packet)
        self._ended.set()  # the relay closed: the publisher is gone

    async def _read_audio(self, sub: AudioSubscription) -> None:
        while (packet := await sub.get()) is not None:
            self._take(packet)

    def _write(self, batch: list[tuple[float, EncodedPacket | AudioPacket]]) -> None:
        if not self._writer.started:
            self._file.parent.mkdir(parents=True, exist_ok=True)
        for at, packet in batch:
            if isinstance(packet, EncodedPacket):
                self._writer.add_video(at, packet)
            else:
                self._writer.add_audio(at, packet)
            if self._writer.bytes >= self._config.max_bytes:
                self.truncated = True
                return

    async def _write_loop(self) -> None:
        try:
            while True:
                ended = self._ended.is_set()
                batch, self._pending = self._pending, []
                if batch and not self.truncated:
                    await asyncio.to_thread(self._write, batch)
                if ended or self.truncated:
                    break
                try:
                    async with asyncio.timeout(self._config.flush_interval_s):
                        await self._ended.wait()
                except TimeoutError:
                    pass
            self._close_subscriptions()
            info = await asyncio.to_thread(self._writer.close)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._writer.abort)
            raise
        except (ClipError, OSError) as exc:  # OSError: the folder cannot be made (disk full, read-only)
            await asyncio.to_thread(self._writer.abort)
            log.warning("recording %s: nothing recorded (%s): %s", self.label, getattr(exc, "reason", "write_failed"), exc)
            return
        if self.truncated:
            log.warning("recording %s: stopped at %d bytes (the limit)", self.label, self._config.max_bytes)
        log.info("recording %s: %.1f s, %d bytes, %d packets dropped", self.label, info.end - info.start, info.size, self.dropped)
        try:
            await self._on_done(StreamRecording(self.recording_id, self.path, info, self.truncated))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("recording %s: could not report %s (the file stays)", self.label, self.path)

    def _close_subscriptions(self) -> None:
        self._video.close()
        if self._audio is not None:
            self._audio.close()

    async def stop(self) -> None:
        """End the recording now, finish and report the file (safe to call twice)."""
        self._ended.set()
        self._close_subscriptions()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(self._write_task, return_exceptions=True)


class StreamRecorders:
    """The live recorders of a hub, by key; `stop()` finishes every one."""

    def __init__(self, data_dir: Path, config: CallRecordingConfig) -> None:
        self._data_dir = Path(data_dir)
        self._config = config
        self._live: dict[str, StreamRecorder] = {}
        self._stopped = False

    def start(self, key: str, outputs: SourceOutputs, on_done: DoneCallback) -> StreamRecorder | None:
        """Record `outputs` under `key` until its relays close; None when off, stopped or already recording."""
        if not self._config.enabled or self._stopped:
            return None
        current = self._live.get(key)
        if current is not None and not current.done:
            return None
        recorder = StreamRecorder(key, outputs, data_dir=self._data_dir, config=self._config, on_done=on_done)
        self._live = {k: r for k, r in self._live.items() if not r.done}
        self._live[key] = recorder
        return recorder

    async def stop(self) -> None:
        """Finish every recording and report it (safe to call twice)."""
        self._stopped = True
        recorders, self._live = list(self._live.values()), {}
        await asyncio.gather(*(r.stop() for r in recorders), return_exceptions=True)

    def stats(self) -> dict[str, object]:
        """Counters per live recording."""
        return {k: {"path": r.path, "dropped": r.dropped, "truncated": r.truncated} for k, r in self._live.items() if not r.done}
