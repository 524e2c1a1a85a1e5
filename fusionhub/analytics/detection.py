"""A detection as the worker reports it and the rules consume it (pure data, no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Detection:
    """One object the detector saw, in pixels of the frame it was given."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    confidence: float

    @property
    def bottom_centre(self) -> tuple[float, float]:
        """Where the object touches the ground: what decides whether a vehicle is in a zone."""
        return ((self.x1 + self.x2) / 2.0, self.y2)

    def scaled(self, fx: float, fy: float) -> Detection:
        """The same detection in a frame fx times as wide and fy times as tall."""
        return Detection(self.x1 * fx, self.y1 * fy, self.x2 * fx, self.y2 * fy, self.label, self.confidence)

    def to_json(self) -> dict[str, Any]:
        """The JSON-able form sent from a worker to the hub."""
        return {
            "x1": round(self.x1, 1),
            "y1": round(self.y1, 1),
            "x2": round(self.x2, 1),
            "y2": round(self.y2, 1),
            "label": self.label,
            "confidence": round(self.confidence, 4),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Detection:
        """Parse what `to_json` produced; raises KeyError/ValueError/TypeError on bad input."""
        return cls(
            float(raw["x1"]),
            float(raw["y1"]),
            float(raw["x2"]),
            float(raw["y2"]),
            str(raw["label"]),
            min(1.0, max(0.0, float(raw["confidence"]))),
        )
