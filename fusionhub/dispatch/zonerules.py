"""A zone's rule settings (rule, least count, time windows, re-alert, bin threshold): checked here,
stored on the zone record, applied by analytics. Pure checks, no I/O."""

from __future__ import annotations

import math
import re
from typing import Any

from fusionhub.dispatch.errors import Invalid

# which rules each kind of zone may carry; the first is the default
RULES_BY_KIND: dict[str, tuple[str, ...]] = {
    "road": ("occupied_road", "street_stall"),
    "bin": ("overflowing_bin",),
}
ZONE_KINDS = tuple(RULES_BY_KIND)
RULE_FIELDS = frozenset({"rule", "min_count", "windows", "realert_s", "threshold"})
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
MAX_WINDOWS = 8


def default_rule(kind: str) -> str:
    """The rule a zone of this kind carries when none is named."""
    return RULES_BY_KIND.get(kind, ("occupied_road",))[0]


def _number(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(field, "must be a number")
    if not low <= value <= high:
        raise Invalid(field, f"must be between {low:g} and {high:g}")
    return float(value)


def check_window(text: Any) -> str:
    """One active window "HH:MM-HH:MM" (may cross midnight; 24:00 ends a day)."""
    match = _WINDOW.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise Invalid("windows", f"{text!r} is not HH:MM-HH:MM (e.g. 07:00-19:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end > 24 * 60:
        raise Invalid("windows", f"{text} ends after 24:00")
    if start == end:
        raise Invalid("windows", f"{text} is empty; leave the windows out to watch all day")
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def check_rule_fields(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The rule settings of a zone, checked (Invalid names the field); None values mean the default."""
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise Invalid(sorted(unknown)[0], "not a zone rule setting")
    out: dict[str, Any] = {}
    rule = fields.get("rule")
    if rule is not None and rule not in RULES_BY_KIND[kind]:
        raise Invalid("rule", f"a {kind} zone takes one of {', '.join(RULES_BY_KIND[kind])}")
    out["rule"] = rule
    count = fields.get("min_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50):
        raise Invalid("min_count", "must be a whole number from 1 to 50")
    out["min_count"] = count
    windows = fields.get("windows")
    if windows is not None:
        if not isinstance(windows, list) or len(windows) > MAX_WINDOWS:
            raise Invalid("windows", f"a list of at most {MAX_WINDOWS} times like 07:00-19:00")
        windows = [check_window(w) for w in windows] or None
    out["windows"] = windows
    realert = fields.get("realert_s")
    out["realert_s"] = None if realert is None else _number("realert_s", realert, 60, 7 * 86400)
    threshold = fields.get("threshold")
    if threshold is not None and kind != "bin":
        raise Invalid("threshold", "only bin zones have a change threshold")
    out["threshold"] = None if threshold is None else _number("threshold", threshold, 0.05, 0.95)
    return out


def check_classes(classes: Any) -> list[str] | None:
    """A zone's own object classes: None (the rule's defaults) or a list of class names."""
    if classes is None:
        return None
    if not isinstance(classes, list) or not all(isinstance(c, str) and c and len(c) <= 64 for c in classes) or len(classes) > 80:
        raise Invalid("classes", "a list of object class names")
    return list(classes) or None
