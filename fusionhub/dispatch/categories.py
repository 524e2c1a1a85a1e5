"""The case category catalog (code, names, deadline) and the default category of each analytics rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from fusionhub.dispatch.errors import Invalid

FALLBACK = "other"


@dataclass(frozen=True)
class Category:
    """One kind of case and how long the field team has to handle it once dispatched."""

    code: str
    name_zh: str
    name_en: str
    deadline_hours: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /api/v1/categories`."""
        return {
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "deadline_hours": self.deadline_hours,
        }


@lru_cache(maxsize=1)
def _catalog() -> tuple[tuple[Category, ...], tuple[tuple[str, str], ...]]:
    # read once: the file ships with the package and never changes while running
    raw = json.loads(resources.files("fusionhub.dispatch").joinpath("data/categories.json").read_text("utf-8"))
    cats = tuple(Category(**c) for c in raw["categories"])
    codes = {c.code for c in cats}
    rules = tuple((rule, code) for rule, code in raw["rules"].items())
    for rule, code in rules:
        if code not in codes:
            raise ValueError(f"categories.json: rule {rule} maps to unknown category {code}")
    if FALLBACK not in codes:
        raise ValueError(f"categories.json: the catalog needs the {FALLBACK!r} category")
    return cats, rules


def load_categories() -> list[Category]:
    """Every category, in catalog order."""
    return list(_catalog()[0])


def get_category(code: str) -> Category:
    """The category with this code; Invalid(field "category") if there is none."""
    for cat in _catalog()[0]:
        if cat.code == code:
            return cat
    raise Invalid("category", f"unknown category {code!r}")


def category_for_rule(rule: str) -> Category:
    """The default category of an analytics rule (`other` when the rule has none)."""
    code = dict(_catalog()[1]).get(rule, FALLBACK)
    return get_category(code)
