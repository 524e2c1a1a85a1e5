"""A zone as the rules see it: polygon, rule, dwell, counts, active windows, re-alert, bin threshold."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fusionhub.analytics.geometry import polygon_area
from fusionhub.analytics.ruleconfig import ClassMap
from fusionhub.analytics.windows import TimeWindow, parse_window, parse_windows

MIN_ZONE_AREA = 1e-4  # of the frame; smaller is a slip of the mouse, not a zone

ZoneKind = Literal["road", "bin"]
RuleName = Literal["occupied_road", "street_stall", "overflowing_bin"]
# which rules a kind of zone may carry; the first is its default
RULES_BY_KIND: dict[str, tuple[RuleName, ...]] = {
    "road": ("occupied_road", "street_stall"),
    "bin": ("overflowing_bin",),
}


class ZoneSpec(BaseModel):
    """A zone drawn on a camera: a polygon in normalised coordinates (0–1, origin top left)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(description="zone id (from the camera record)")
    name: str = Field(min_length=1, max_length=200, description="shown on flags")
    kind: ZoneKind = Field(default="road", description="road: things must not stay; bin: a bin must not overflow")
    rule: RuleName = Field(
        default="occupied_road",
        description="road: occupied_road (vehicles) or street_stall; bin: overflowing_bin (default by kind)",
    )
    polygon: list[tuple[float, float]] = Field(
        min_length=3, max_length=256, description="vertices (x, y), each 0–1, in drawing order"
    )
    dwell_s: float = Field(default=60.0, ge=0.0, le=86400.0, description="how long it must stay before a flag")
    classes: list[str] | None = Field(
        default=None, max_length=80, description="object classes this zone watches; default: the rule's class map"
    )
    min_count: int = Field(default=1, ge=1, le=50, description="at least this many must have stayed the dwell")
    windows: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="active times of day 'HH:MM-HH:MM' in the hub's time zone (may cross midnight); empty: always",
    )
    realert_s: float | None = Field(
        default=None, ge=60.0, le=7 * 86400.0, description="re-alert a stay still there after this long; None: config"
    )
    threshold: float | None = Field(
        default=None, ge=0.05, le=0.95, description="bin zones: least change score to count; None: config"
    )
    reference: str | None = Field(
        default=None, max_length=512, description="bin zones: the captured normal picture, relative to the data dir"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_rule(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("rule") is None:
            data = {**data, "rule": RULES_BY_KIND[str(data.get("kind") or "road")][0]}
        return data

    @model_validator(mode="after")
    def _rule_fits_kind(self) -> ZoneSpec:
        if self.rule not in RULES_BY_KIND[self.kind]:
            raise ValueError(f"a {self.kind} zone cannot carry rule {self.rule}")
        return self

    @field_validator("polygon")
    @classmethod
    def _check_polygon(cls, poly: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for x, y in poly:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"polygon point ({x}, {y}) is outside 0–1")
        if polygon_area(poly) < MIN_ZONE_AREA:
            raise ValueError("polygon has (almost) no area")
        return poly

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, windows: list[str]) -> list[str]:
        return [str(parse_window(w)) for w in windows]

    @property
    def time_windows(self) -> tuple[TimeWindow, ...]:
        """The parsed active windows (empty: always active)."""
        return parse_windows(self.windows)

    @property
    def watched(self) -> frozenset[str]:
        """Classes that count for this zone with the default (COCO) class map."""
        return watched_classes(self, ClassMap())


def watched_classes(zone: ZoneSpec, classes: ClassMap) -> frozenset[str]:
    """The classes a zone watches: its own list, or its rule's list from the class map."""
    if zone.classes:
        return frozenset(zone.classes)
    by_rule = {"occupied_road": classes.vehicle, "street_stall": classes.stall, "overflowing_bin": classes.overflowing_bin}
    return frozenset(by_rule[zone.rule])
