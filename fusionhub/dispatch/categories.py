"""The case category catalog: parts (部件) and events (事件) in major and minor classes with codes
(GB/T 30428 style), each with its dispatch and handling time limits; and the default category of
each analytics rule.

The catalog is a JSON file an admin edits (through `PUT /api/v1/categories` or on disk); every
version is validated as a whole before it replaces the one in use. A `Catalog` never changes;
`CatalogStore` swaps in a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fusionhub.dispatch.errors import Invalid
from fusionhub.dispatch.worktime import Limit, LimitType

log = logging.getLogger(__name__)

FALLBACK = "other"
MAX_FILE_BYTES = 1024 * 1024
Kind = Literal["part", "event"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitSpec(_Spec):
    """A time limit in the file: `{"type": "working_hours", "amount": 4}`."""

    type: LimitType
    amount: float = Field(gt=0, le=10_000)


class MajorSpec(_Spec):
    """A major class (大类): e.g. event 01 市容环境."""

    kind: Kind
    code: str = Field(pattern=r"^\d{2}$", description="two digits, unique within its kind")
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=64)


class CategorySpec(_Spec):
    """A minor class (小类): what a case is filed as."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="the stable identifier cases carry")
    kind: Kind
    major: str = Field(pattern=r"^\d{2}$")
    minor: str = Field(pattern=r"^\d{4}$", description="four digits, starting with the major class")
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=64)
    dispatch_limit: LimitSpec = Field(description="from filing to dispatch")
    handle_limit: LimitSpec = Field(description="from dispatch to the team's report")


class CatalogSpec(_Spec):
    """The whole file."""

    majors: list[MajorSpec] = Field(min_length=1, max_length=200)
    categories: list[CategorySpec] = Field(min_length=1, max_length=2000)
    rules: dict[str, str] = Field(default_factory=dict, description="analytics rule -> category code")

    @model_validator(mode="after")
    def _consistent(self) -> CatalogSpec:
        majors = {(m.kind, m.code) for m in self.majors}
        if len(majors) != len(self.majors):
            raise ValueError("major class codes must be unique within parts and within events")
        codes: set[str] = set()
        minors: set[tuple[str, str]] = set()
        for cat in self.categories:
            if cat.code in codes:
                raise ValueError(f"category code {cat.code!r} appears twice")
            if (cat.kind, cat.minor) in minors:
                raise ValueError(f"{cat.kind} minor class {cat.minor} appears twice")
            if (cat.kind, cat.major) not in majors:
                raise ValueError(f"category {cat.code!r}: no {cat.kind} major class {cat.major}")
            if not cat.minor.startswith(cat.major):
                raise ValueError(f"category {cat.code!r}: minor class {cat.minor} must start with {cat.major}")
            codes.add(cat.code)
            minors.add((cat.kind, cat.minor))
        if FALLBACK not in codes:
            raise ValueError(f"the catalog needs the {FALLBACK!r} category (cases of unknown kind)")
        for rule, code in self.rules.items():
            if code not in codes:
                raise ValueError(f"rule {rule!r} maps to unknown category {code!r}")
        return self


@dataclass(frozen=True)
class Category:
    """One kind of case and its time limits."""

    code: str
    kind: str
    major: str
    major_name_zh: str
    major_name_en: str
    minor: str
    name_zh: str
    name_en: str
    dispatch_limit: Limit
    handle_limit: Limit

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /api/v1/categories` → `categories[]`."""
        return {
            "code": self.code,
            "kind": self.kind,
            "major": self.major,
            "major_name_zh": self.major_name_zh,
            "major_name_en": self.major_name_en,
            "minor": self.minor,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "dispatch_limit": self.dispatch_limit.as_dict(),
            "handle_limit": self.handle_limit.as_dict(),
        }


class Catalog:
    """A validated catalog: look categories up by code or by analytics rule."""

    def __init__(self, spec: CatalogSpec) -> None:
        self.spec = spec
        majors = {(m.kind, m.code): m for m in spec.majors}
        self._by_code: dict[str, Category] = {}
        for c in spec.categories:
            major = majors[(c.kind, c.major)]
            self._by_code[c.code] = Category(
                code=c.code,
                kind=c.kind,
                major=c.major,
                major_name_zh=major.name_zh,
                major_name_en=major.name_en,
                minor=c.minor,
                name_zh=c.name_zh,
                name_en=c.name_en,
                dispatch_limit=Limit(c.dispatch_limit.type, c.dispatch_limit.amount),
                handle_limit=Limit(c.handle_limit.type, c.handle_limit.amount),
            )
        self._rules = dict(spec.rules)

    @classmethod
    def parse(cls, raw: Any) -> Catalog:
        """A catalog from the file's JSON value; Invalid (field "catalog") naming what is wrong."""
        try:
            return cls(CatalogSpec.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise Invalid("catalog", f"{where + ': ' if where else ''}{err['msg']}") from exc

    def categories(self) -> list[Category]:
        """Every category, in file order."""
        return list(self._by_code.values())

    def get(self, code: str) -> Category:
        """The category with this code; Invalid(field "category") if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise Invalid("category", f"unknown category {code!r}") from None

    def find(self, code: str) -> Category | None:
        """The category with this code, or None (e.g. a code an older catalog had)."""
        return self._by_code.get(code)

    def for_rule(self, rule: str) -> Category:
        """The default category of an analytics rule (`other` when the rule has none)."""
        return self.get(self._rules.get(rule, FALLBACK))

    def as_dict(self) -> dict[str, Any]:
        """The file's JSON value (what `GET /api/v1/categories` returns and `PUT` takes)."""
        return self.spec.model_dump(mode="json")


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog that ships with FusionHub (read once; it never changes)."""
    text = resources.files("fusionhub.dispatch").joinpath("data/categories.json").read_text("utf-8")
    return Catalog.parse(json.loads(text))


# -- the built-in catalog, for callers without a service at hand --------------------------------

def load_categories() -> list[Category]:
    """Every category of the built-in catalog."""
    return default_catalog().categories()


def get_category(code: str) -> Category:
    """A category of the built-in catalog; Invalid if unknown."""
    return default_catalog().get(code)


def category_for_rule(rule: str) -> Category:
    """The built-in default category of an analytics rule."""
    return default_catalog().for_rule(rule)


# -- the catalog in use ----------------------------------------------------------------------------

def _read(path: Path) -> tuple[float, Any] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if stat.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    return stat.st_mtime, json.loads(path.read_text("utf-8"))


def _write(path: Path, raw: Any) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(raw, ensure_ascii=False, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half
    return path.stat().st_mtime


class CatalogStore:
    """The catalog in use: the admin's file when there is one, else the built-in one.

    `reload_if_changed` (the supervisor calls it every poll) picks up an edit made on disk or by
    another hub process; a file that does not validate is logged and the catalog in use is kept.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.current: Catalog = default_catalog()
        self._mtime: float | None = None
        self._lock = asyncio.Lock()

    async def reload_if_changed(self) -> bool:
        """Re-read the file if it changed since the last look; True when a new catalog is in use."""
        if self.path is None:
            return False
        async with self._lock:
            try:
                found = await asyncio.to_thread(_read, self.path)
            except (OSError, ValueError) as exc:
                log.error("catalog %s cannot be read (%s); keeping the catalog in use", self.path, exc)
                return False
            if found is None:
                if self._mtime is not None:
                    log.warning("catalog %s was removed; using the built-in catalog", self.path)
                    self.current, self._mtime = default_catalog(), None
                    return True
                return False
            mtime, raw = found
            if mtime == self._mtime:
                return False
            try:
                catalog = Catalog.parse(raw)
            except Invalid as exc:
                log.error("catalog %s is not valid (%s); keeping the catalog in use", self.path, exc)
                self._mtime = mtime  # do not log the same bad file every poll
                return False
            self.current, self._mtime = catalog, mtime
            log.info("catalog %s loaded: %d categories", self.path, len(catalog.categories()))
            return True

    async def replace(self, raw: Any) -> Catalog:
        """Validate a whole new catalog, write it to the file and use it; Invalid changes nothing."""
        catalog = Catalog.parse(raw)
        if self.path is None:
            raise Invalid("catalog", "this hub has no catalog file configured")
        async with self._lock:
            self._mtime = await asyncio.to_thread(_write, self.path, catalog.as_dict())
            self.current = catalog
        log.info("catalog %s replaced: %d categories", self.path, len(catalog.categories()))
        return catalog
