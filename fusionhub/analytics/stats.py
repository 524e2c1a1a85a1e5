"""Counters and stage timings of the analytics hub (plain numbers; read them, never write)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

# what a worker reports per frame: wall milliseconds, and the CPU its process spent (all threads)
STAGES = (
    "letterbox_ms", "inference_ms", "postprocess_ms", "letterbox_cpu_ms", "inference_cpu_ms", "postprocess_cpu_ms",
)
RECENT = 20_000  # analysed frames whose sample age is kept (a few minutes of a large hub)


@dataclass
class HubStats:
    """What the hub did since it started."""

    frames_submitted: int = 0
    frames_dropped: int = 0  # superseded by a newer frame of the same camera before analysis
    frames_superseded_decoding: int = 0  # a keyframe due for a sample, replaced by the next before it was decoded
    frames_ignored: int = 0  # camera without zones
    frames_rejected: int = 0  # not an HxWx3 uint8 frame
    frames_analysed: int = 0  # went through the rules: inferred by a worker, or gated
    frames_inferred: int = 0  # went through a worker's detector
    frames_gated: int = 0  # unchanged since the camera's last inferred frame: its detections reused
    frames_batched: int = 0  # over the inferred frames, the sum of the batch each went through the model in
    jobs_retried: int = 0  # the worker died; the frame went to another one
    jobs_lost: int = 0  # the worker died and a newer frame was already waiting (perishable)
    jobs_failed: int = 0  # the worker reported an error for the frame
    frame_bytes_sent: int = 0  # pixels sent to workers (each frame at the size its model takes it)
    flags_raised: int = 0
    flags_delivered: int = 0
    flags_failed: int = 0  # on_flag kept failing; logged as an error
    sightings: int = 0  # flagged stays reported again (still present), no new flag
    stays_dismissed: int = 0  # stays told that a reviewer dismissed their flag: no re-alert
    by_worker: Counter[str] = field(default_factory=Counter)
    by_camera: Counter[int] = field(default_factory=Counter)
    # (camera id, sample time, sample age when its analysis ended) of the latest analysed frames
    recent: deque[tuple[int, float, float]] = field(default_factory=lambda: deque(maxlen=RECENT))
    _ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*STAGES, "rules_ms", "roundtrip_ms"), 0.0))

    def inferred(self, worker: str, timings: dict[str, Any], roundtrip_s: float, batch: int = 1) -> None:
        """Count one frame a worker ran the detector on, with its stage timings and the batch it ran in."""
        self.frames_inferred += 1
        self.frames_batched += batch
        self.by_worker[worker] += 1
        for stage in STAGES:
            value = timings.get(stage)
            if isinstance(value, (int, float)):
                self._ms[stage] += float(value)
        self._ms["roundtrip_ms"] += roundtrip_s * 1e3

    def analysed(self, camera_id: int, rules_ms: float, age_s: float, ts: float = 0.0) -> None:
        """Count one frame that went through the rules (inferred or gated)."""
        self.frames_analysed += 1
        self.by_camera[camera_id] += 1
        self._ms["rules_ms"] += rules_ms
        self.recent.append((camera_id, ts, age_s))

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per frame: worker stages and round trip per inferred frame, rules per analysed one."""
        inferred = max(1, self.frames_inferred)
        out = {k: v / inferred for k, v in self._ms.items()}
        out["rules_ms"] = self._ms["rules_ms"] / max(1, self.frames_analysed)
        return out
