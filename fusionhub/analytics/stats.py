"""Counters and stage timings of the analytics hub (plain numbers; read them, never write)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

STAGES = ("letterbox_ms", "inference_ms", "postprocess_ms")


@dataclass
class HubStats:
    """What the hub did since it started."""

    frames_submitted: int = 0
    frames_dropped: int = 0  # superseded by a newer frame of the same camera before analysis
    frames_ignored: int = 0  # camera without zones
    frames_rejected: int = 0  # not an HxWx3 uint8 frame
    frames_analysed: int = 0
    jobs_retried: int = 0  # the worker died; the frame went to another one
    jobs_lost: int = 0  # the worker died and a newer frame was already waiting (perishable)
    jobs_failed: int = 0  # the worker reported an error for the frame
    flags_raised: int = 0
    flags_delivered: int = 0
    flags_failed: int = 0  # on_flag kept failing; logged as an error
    by_worker: Counter[str] = field(default_factory=Counter)
    by_camera: Counter[int] = field(default_factory=Counter)
    _ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*STAGES, "rules_ms", "roundtrip_ms"), 0.0))

    def analysed(self, worker: str, camera_id: int, timings: dict[str, Any], rules_ms: float, roundtrip_s: float) -> None:
        """Count one analysed frame and add its stage timings."""
        self.frames_analysed += 1
        self.by_worker[worker] += 1
        self.by_camera[camera_id] += 1
        for stage in STAGES:
            value = timings.get(stage)
            if isinstance(value, (int, float)):
                self._ms[stage] += float(value)
        self._ms["rules_ms"] += rules_ms
        self._ms["roundtrip_ms"] += roundtrip_s * 1e3

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per analysed frame, per stage (roundtrip: hub send → result back)."""
        n = max(1, self.frames_analysed)
        return {k: v / n for k, v in self._ms.items()}
