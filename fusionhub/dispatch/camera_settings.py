"""A camera's analytics settings as dispatch stores them: sampling and analysis, checked, with defaults.

Dispatch keeps them as plain JSON (it never imports media or analytics); the console's wiring
turns them into media's SamplingOptions and analytics' CameraAnalysis, which repeat these bounds.
"""

from __future__ import annotations

import math
from typing import Any

from fusionhub.dispatch.errors import Invalid

SAMPLE_MODES = ("keyframes", "fps")
MAX_FPS = 30.0
IMGSZ_RANGE = (160, 1280)
DEFAULT_SAMPLING: dict[str, Any] = {"mode": "keyframes", "fps": 1.0}
DEFAULT_ANALYSIS: dict[str, Any] = {"imgsz": None, "motion_gate": True}


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def check_sampling(value: Any) -> dict[str, Any] | None:
    """`{"mode": "keyframes"|"fps", "fps": 0–30}` (missing keys take the defaults); None clears it."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(DEFAULT_SAMPLING):
        raise Invalid("sampling", 'an object with "mode" and "fps"')
    out = {**DEFAULT_SAMPLING, **value}
    if out["mode"] not in SAMPLE_MODES:
        raise Invalid("sampling", f"mode is one of {', '.join(SAMPLE_MODES)}")
    if not _number(out["fps"]) or not 0.0 < out["fps"] <= MAX_FPS:
        raise Invalid("sampling", f"fps is a number above 0 and at most {MAX_FPS:g}")
    out["fps"] = float(out["fps"])
    return out


def check_analysis(value: Any) -> dict[str, Any] | None:
    """`{"imgsz": null|160–1280 (multiple of 32), "motion_gate": bool}`; None clears it."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(DEFAULT_ANALYSIS):
        raise Invalid("analysis", 'an object with "imgsz" and "motion_gate"')
    out = {**DEFAULT_ANALYSIS, **value}
    size = out["imgsz"]
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not IMGSZ_RANGE[0] <= size <= IMGSZ_RANGE[1] or size % 32
    ):
        raise Invalid("analysis", "imgsz is null or a multiple of 32 from 160 to 1280")
    if not isinstance(out["motion_gate"], bool):
        raise Invalid("analysis", "motion_gate is true or false")
    return out


def sampling_view(stored: dict[str, Any] | None) -> dict[str, Any]:
    """What the API shows: the stored settings or the defaults."""
    return {**DEFAULT_SAMPLING, **(stored or {})}


def analysis_view(stored: dict[str, Any] | None) -> dict[str, Any]:
    """What the API shows: the stored settings or the defaults."""
    return {**DEFAULT_ANALYSIS, **(stored or {})}
