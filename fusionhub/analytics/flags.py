"""Turning a rule firing into a FlagRaised: evidence picture (in a thread), then `on_flag`.

Flags are events that create records: they are never dropped. The queue is bounded and the hub
waits for room (back-pressure on result handling) instead of dropping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionhub.analytics.errors import EvidenceError
from fusionhub.analytics.evidence import Marked, write_clean_frame, write_evidence
from fusionhub.analytics.rules import RuleFlag, RuleSighting
from fusionhub.analytics.stats import HubStats
from fusionhub.signaling.messages import Box, FlagRaised, ZoneSighting
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
DELIVERY_ATTEMPTS = 5
DRAIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class FlagWork:
    """A rule firing with the frame it fired on and the id its flag will carry."""

    flag: RuleFlag
    frame: np.ndarray
    flag_id: str


def build_sighting(seen: RuleSighting) -> ZoneSighting:
    """The bus message for a flagged stay that goes on."""
    return ZoneSighting(
        camera_id=seen.camera_id,
        zone_id=seen.zone.id,
        rule=seen.zone.rule,
        label=seen.detection.label,
        confidence=min(1.0, max(0.0, seen.detection.confidence)),
        first_seen_at=seen.first_seen_at,
        flagged_at=seen.flagged_at,
        seen_at=seen.ts,
    )


def build_flag(work: FlagWork, evidence_path: str, frame_path: str | None = None) -> FlagRaised:
    """The bus message for a rule firing; the flagged object's box comes first."""
    f = work.flag
    boxes = [(f.track_id, f.detection), *f.others]
    return FlagRaised(
        flag_id=work.flag_id,
        camera_id=f.camera_id,
        zone_id=f.zone.id,
        zone_name=f.zone.name,
        rule=f.zone.rule,
        label=f.detection.label,
        confidence=f.detection.confidence,
        boxes=[
            Box(x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2, label=d.label, confidence=d.confidence, track_id=tid)
            for tid, d in boxes
        ],
        frame_width=int(work.frame.shape[1]),
        frame_height=int(work.frame.shape[0]),
        evidence_path=evidence_path,
        frame_path=frame_path,
        repeat=f.repeat,
        first_seen_at=f.first_seen_at,
        # wall clock when it fired, never before the frame that made it fire
        raised_at=max(time.time(), f.ts),
    )


class FlagEmitter:
    """Owns the flag queue and the task that draws evidence and calls `on_flag`, in order."""

    def __init__(
        self,
        data_dir: Path,
        on_flag: Callable[[FlagRaised], Awaitable[None]],
        *,
        quality: int,
        stats: HubStats,
    ) -> None:
        self._data_dir = data_dir
        self._on_flag = on_flag
        self._quality = quality
        self._stats = stats
        self._queue: asyncio.Queue[FlagWork] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the delivery task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="analytics-flags")

    async def put(self, work: FlagWork) -> None:
        """Queue a flag; waits while the queue is full (flags are never dropped)."""
        await self._queue.put(work)

    async def stop(self) -> None:
        """Deliver what is queued (up to a few seconds), then stop. Safe to call twice."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await self._queue.join()
        except TimeoutError:
            log.error("analytics: %d flag(s) not delivered before shutdown", self._queue.qsize())
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            work = await self._queue.get()
            try:
                await self._deliver(work)
            finally:
                self._queue.task_done()

    def _pictures(self, work: FlagWork, marks: list[Marked]) -> tuple[str, str | None]:
        """Evidence (drawn) and the clean frame beside it (in a thread); a flag without them still goes out."""
        f = work.flag
        try:
            rel = write_evidence(self._data_dir, work.frame, f.zone.polygon, marks, quality=self._quality)
        except EvidenceError as exc:
            # a flag without its picture still reaches the review queue
            log.error("camera %d: evidence for flag %s not saved: %s", f.camera_id, work.flag_id, exc)
            return "", None
        try:
            return rel, write_clean_frame(self._data_dir, rel, work.frame)
        except EvidenceError as exc:
            log.warning("camera %d: clean frame of flag %s not saved: %s", f.camera_id, work.flag_id, exc)
            return rel, None

    async def _deliver(self, work: FlagWork) -> None:
        f = work.flag
        marks = [Marked(f.detection, f.track_id, True), *(Marked(d, tid, False) for tid, d in f.others)]
        rel, clean = await asyncio.to_thread(self._pictures, work, marks)
        message = build_flag(work, rel, clean)
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                await self._on_flag(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("camera %d: delivering flag %s failed (attempt %d)", f.camera_id, work.flag_id, attempt)
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
                continue
            self._stats.flags_delivered += 1
            return
        self._stats.flags_failed += 1
        log.error("camera %d: flag %s could not be delivered after %d attempts", f.camera_id, work.flag_id, DELIVERY_ATTEMPTS)
