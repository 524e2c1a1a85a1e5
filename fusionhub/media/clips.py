"""ClipRecorder: when a flag is raised, cut an MP4 from the source's packet ring, and keep disk budgets.

For a flag raised at T the clip covers [T - clip_before_s, T + clip_after_s]: the recorder waits
until T + clip_after_s, takes that window from the ring (it starts at a keyframe) and writes it in
a worker thread without re-encoding the video. The result is reported through `on_result` as a
ClipReady or ClipMissing message; the hub never crashes on a full disk, it reports the clip
missing (reason disk_full or no_budget) and carries on.

Files are only ever written under server-generated names: <data_dir>/clips/<uuid4 hex>.mp4.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from fusionhub.media.clipwriter import ClipError, write_clip
from fusionhub.media.recording import RecordingConfig
from fusionhub.media.retention import enforce_budget
from fusionhub.media.ring import PacketRing
from fusionhub.signaling.messages import ClipMissing, ClipReady
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CLIPS_DIR = "clips"
EVIDENCE_DIR = "evidence"
_RECENT = 4096  # flag ids remembered, so a redelivered flag event does not record twice
_WRITE_OVERHEAD = 64 * 1024  # MP4 headers and index on top of the packet bytes, roughly

ClipResult = ClipReady | ClipMissing
RingLookup = Callable[[int], PacketRing | None]


class ClipRecorder:
    """Records flag clips from the sources' rings; owns its tasks (stop() cancels them)."""

    def __init__(
        self,
        config: RecordingConfig,
        data_dir: Path,
        *,
        ring_of: RingLookup,
        on_result: Callable[[ClipResult], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._data_dir = Path(data_dir)
        self._clips_dir = self._data_dir / CLIPS_DIR
        self._ring_of = ring_of
        self._on_result = on_result
        self._clock = clock
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._retention: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()  # one clip written at a time: bounded disk and CPU bursts
        self._stopped = False
        self.written = 0
        self.missing = 0

    def start(self) -> None:
        """Start enforcing the disk budgets periodically."""
        if self._retention is None and not self._stopped:
            self._retention = asyncio.create_task(self._retention_loop(), name="media-retention")

    async def stop(self) -> None:
        """Cancel pending clips (each reported missing, reason "stopped") and the retention task (safe twice)."""
        self._stopped = True
        unfinished = [flag_id for flag_id, job in self._jobs.items() if not job.done()]
        tasks = list(self._jobs.values()) + ([self._retention] if self._retention else [])
        self._retention = None
        await cancel_and_wait(*tasks)
        self._jobs.clear()
        for flag_id in unfinished:  # the record says why it has no clip (delivered if the bus is durable)
            await self._report(ClipMissing(flag_id=flag_id, reason="stopped"))

    def request(self, flag_id: str, camera_id: int, at: float) -> bool:
        """Record the clip of a flag raised at epoch `at`; False when it is a repeat (already recorded)."""
        if self._stopped or flag_id in self._recent:
            return False
        self._recent[flag_id] = None
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        if len(self._jobs) >= self._config.max_pending_clips:
            log.warning("flag %s: %d clips pending already; this one is not recorded", flag_id, len(self._jobs))
            self._jobs[flag_id] = asyncio.create_task(
                self._report(ClipMissing(flag_id=flag_id, camera_id=camera_id, reason="busy")), name=f"clip-{flag_id}"
            )
        else:
            self._jobs[flag_id] = asyncio.create_task(self._record(flag_id, camera_id, at), name=f"clip-{flag_id}")
        self._jobs[flag_id].add_done_callback(self._forget_job)
        return True

    def _forget_job(self, task: asyncio.Task[None]) -> None:
        for flag_id, job in list(self._jobs.items()):
            if job is task:
                del self._jobs[flag_id]

    @property
    def pending(self) -> int:
        """Clips waiting for their end or being written."""
        return len(self._jobs)

    async def _record(self, flag_id: str, camera_id: int, at: float) -> None:
        cfg = self._config
        if cfg.clips_budget_bytes == 0 or cfg.buffer_s == 0:
            await self._report(ClipMissing(flag_id=flag_id, camera_id=camera_id, reason="no_budget"))
            return
        start, end = at - cfg.clip_before_s, at + cfg.clip_after_s
        await asyncio.sleep(max(0.0, end - self._clock()) + 0.2)
        ring = self._ring_of(camera_id)
        entries = ring.window(start, end) if ring is not None else []
        estimate = sum(len(e.packet.data) for e in entries) + _WRITE_OVERHEAD
        if estimate > cfg.clips_budget_bytes:
            await self._report(ClipMissing(flag_id=flag_id, camera_id=camera_id, reason="no_budget"))
            return
        name = f"{uuid.uuid4().hex}.mp4"
        async with self._write_lock:
            await self._enforce_clips(cfg.clips_budget_bytes - estimate)
            try:
                await asyncio.to_thread(self._clips_dir.mkdir, parents=True, exist_ok=True)
                info = await asyncio.to_thread(write_clip, self._clips_dir / name, entries)
            except ClipError as exc:
                log.warning("flag %s: clip of camera %s not recorded (%s): %s", flag_id, camera_id, exc.reason, exc)
                await self._report(ClipMissing(flag_id=flag_id, camera_id=camera_id, reason=exc.reason))  # type: ignore[arg-type]
                return
            except OSError as exc:  # the directory itself cannot be made (disk full, read-only)
                reason = "disk_full" if exc.errno == 28 else "write_failed"
                log.warning("flag %s: clip not recorded (%s): %s", flag_id, reason, exc.strerror)
                await self._report(ClipMissing(flag_id=flag_id, camera_id=camera_id, reason=reason))  # type: ignore[arg-type]
                return
        log.info("flag %s: clip of camera %s written (%.1f s, %d bytes)", flag_id, camera_id, info.end - info.start, info.size)
        await self._report(
            ClipReady(
                flag_id=flag_id,
                camera_id=camera_id,
                path=f"{CLIPS_DIR}/{name}",
                start=info.start,
                end=info.end,
                size=info.size,
                sha256=info.sha256,
                has_audio=info.has_audio,
            )
        )

    async def _report(self, result: ClipResult) -> None:
        if isinstance(result, ClipReady):
            self.written += 1
        elif result.flag_id is not None:
            self.missing += 1
        try:
            await self._on_result(result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not report the clip of flag %s", result.flag_id)

    async def _enforce_clips(self, budget: int) -> None:
        removed = await asyncio.to_thread(enforce_budget, self._clips_dir, max(0, budget))
        for item in removed:
            await self._report(ClipMissing(path=f"{CLIPS_DIR}/{item.name}", reason="retention"))

    async def enforce_budgets(self) -> None:
        """Apply both disk budgets now (clips first, then evidence pictures)."""
        async with self._write_lock:
            await self._enforce_clips(self._config.clips_budget_bytes)
        await asyncio.to_thread(enforce_budget, self._data_dir / EVIDENCE_DIR, self._config.evidence_budget_bytes)

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.enforce_budgets()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention pass failed; retrying later")
            await asyncio.sleep(self._config.retention_interval_s)

    def stats(self) -> dict[str, int]:
        """Counters for monitoring."""
        return {"pending": len(self._jobs), "written": self.written, "missing": self.missing}
