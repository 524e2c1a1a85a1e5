"""Rule tuning and the class map: which model classes each rule looks at (`[analytics.rules]`).

The default map is for a COCO model (YOLO26n). A custom-trained model with its own class names
drops in by config alone: point `analytics.model`/`model_path` at it and name its classes here,
e.g. `vehicle = ["parked_car"]`, `stall = ["street_stall"]`, `stall_people = []`,
`overflowing_bin = ["overflowing_bin"]`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

ClassList = list[str]


def _vehicles() -> ClassList:
    return ["car", "bus", "truck", "motorcycle"]


def _stall_things() -> ClassList:
    # COCO has no "stall": the things a street stall is made of stand in for it
    return ["umbrella", "dining table", "chair", "bench"]


def _people() -> ClassList:
    return ["person"]


def _bins() -> ClassList:
    return ["overflowing_bin"]


def _litter() -> ClassList:
    # COCO objects typical of litter and dumped bags
    return ["bottle", "cup", "handbag", "backpack", "suitcase"]


def _occluders() -> ClassList:
    return ["person", "car", "bus", "truck", "motorcycle", "bicycle"]


class ClassMap(BaseModel):
    """Model class names per role; a zone's own `classes` override the role's list for that zone."""

    model_config = ConfigDict(extra="forbid")

    vehicle: ClassList = Field(
        default_factory=_vehicles, max_length=80, description="what an occupied_road zone watches by default"
    )
    stall: ClassList = Field(
        default_factory=_stall_things,
        max_length=80,
        description="what a street_stall zone watches: a stall class of a custom model, or COCO stand-ins",
    )
    stall_people: ClassList = Field(
        default_factory=_people,
        max_length=80,
        description="people who must dwell by a stall for it to count; empty when the model has a real stall class",
    )
    overflowing_bin: ClassList = Field(
        default_factory=_bins,
        max_length=80,
        description="model classes that mean 'overflowing bin'; used instead of the reference check when the model has one",
    )
    litter: ClassList = Field(
        default_factory=_litter, max_length=80, description="objects that add weight to a bin zone's change score"
    )
    occluders: ClassList = Field(
        default_factory=_occluders,
        max_length=80,
        description="objects that, standing in front of a bin zone, make a sample neither count nor reset",
    )


class RulesConfig(BaseModel):
    """Tuning shared by every zone; zones override dwell, counts, windows, re-alert and threshold."""

    model_config = ConfigDict(extra="forbid")

    classes: ClassMap = Field(default_factory=ClassMap, description="model classes per rule role")
    realert_s: float | None = Field(
        default=None,
        ge=60.0,
        le=7 * 86400.0,
        description="re-alert an unresolved stay after this many seconds (zones may set their own); None: never",
    )
    sighting_s: float | None = Field(
        default=600.0,
        ge=30.0,
        le=86400.0,
        description="while a flagged object stays, report it this often (no new flag): a zone's open case "
        "gets 'still present at HH:MM' in its timeline; None: never",
    )
    stall_people_ratio: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="share of a stall's samples in which people must be seen by it (COCO stand-in rule)",
    )
    stall_move_iou: float = Field(
        default=0.5,
        ge=0.05,
        le=0.95,
        description="a stall object whose box overlaps where it arrived by less than this moved: its dwell restarts",
    )
    bin_threshold: float = Field(
        default=0.3, ge=0.05, le=0.95, description="least change score (0-1) for a bin zone to count as different"
    )
    bin_noise_k: float = Field(
        default=4.0,
        ge=0.0,
        le=20.0,
        description="the adaptive threshold stays this many standard deviations above the zone's normal score",
    )
    bin_noise_rate: float = Field(
        default=0.05, ge=0.001, le=0.5, description="how fast a zone's normal score is learnt (EMA weight)"
    )
    bin_grace_s: float = Field(
        default=10.0,
        ge=0.0,
        le=3600.0,
        description="a dip below the threshold shorter than this does not end an overflow",
    )
    litter_weight: float = Field(
        default=0.15, ge=0.0, le=1.0, description="score each litter object found in a bin zone adds"
    )
    litter_cap: float = Field(default=0.45, ge=0.0, le=1.0, description="most score litter objects add together")
    bin_occlusion: float = Field(
        default=0.25,
        ge=0.05,
        le=1.0,
        description="share of a bin zone's box an occluder must cover for the sample to be held",
    )
