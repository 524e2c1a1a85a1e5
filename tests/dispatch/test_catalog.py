"""The category catalog: the default file, validation of an admin's file, the store that swaps it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from fusionhub.dispatch.categories import (
    Catalog,
    CatalogStore,
    category_for_rule,
    default_catalog,
    get_category,
    load_categories,
)
from fusionhub.dispatch.errors import Invalid
from fusionhub.dispatch.worktime import Limit
from fusionhub.signaling.messages import FlagRaised


def test_default_catalog_covers_the_common_problems_and_every_analytics_rule() -> None:
    codes = {c.code for c in load_categories()}
    assert {
        "exposed_garbage", "dirty_road", "business_outside_shop", "piled_materials", "damaged_road",
        "roadside_parking", "overflowing_bin", "manhole_cover", "street_stall", "other",
    } <= codes
    rules = FlagRaised.model_fields["rule"].annotation.__args__  # type: ignore[union-attr]
    for rule in rules:
        assert category_for_rule(rule).code != "other", f"analytics rule {rule} has no category"
    assert category_for_rule("occupied_road").code == "roadside_parking"
    assert category_for_rule("something_new").code == "other"


def test_categories_have_classes_codes_and_limits() -> None:
    parking = get_category("roadside_parking")
    assert (parking.kind, parking.major, parking.minor) == ("event", "05", "0505")
    assert parking.name_zh == "占道停车" and parking.major_name_zh == "街面秩序"
    assert parking.handle_limit == Limit("urgent_hours", 2)
    manhole = get_category("manhole_cover")
    assert manhole.kind == "part" and manhole.major_name_zh == "公用设施"
    kinds = {c.handle_limit.type for c in load_categories()} | {c.dispatch_limit.type for c in load_categories()}
    assert kinds == {"urgent_hours", "working_hours", "working_days", "calendar_days"}
    for cat in load_categories():
        assert cat.minor.startswith(cat.major)
    assert set(parking.as_dict()) == {
        "code", "kind", "major", "major_name_zh", "major_name_en", "minor", "name_zh", "name_en",
        "dispatch_limit", "handle_limit",
    }


def test_unknown_category_is_invalid_input() -> None:
    with pytest.raises(Invalid) as info:
        get_category("parking")
    assert info.value.field == "category" and info.value.code == "invalid_input"


def _raw() -> dict[str, Any]:
    return copy.deepcopy(default_catalog().as_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["categories"].append(dict(r["categories"][0])), "appears twice"),
        (lambda r: r["categories"][0].update(minor="9901"), "must start with"),
        (lambda r: r["categories"][0].update(major="77", minor="7701"), "no event major class 77"),
        (lambda r: r["categories"][0]["handle_limit"].update(type="fortnights"), "handle_limit.type"),
        (lambda r: r["categories"][0]["handle_limit"].update(amount=0), "greater than 0"),
        (lambda r: r["rules"].update(occupied_road="nope"), "unknown category"),
        (lambda r: r.update(categories=[c for c in r["categories"] if c["code"] != "other"]), "'other'"),
        (lambda r: r["categories"][0].update(colour="red"), "Extra inputs"),
        (lambda r: r["majors"].append(dict(r["majors"][0])), "unique"),
    ],
)
def test_a_bad_catalog_is_refused_with_what_is_wrong(change: Any, message: str) -> None:
    raw = _raw()
    change(raw)
    with pytest.raises(Invalid, match=message) as info:
        Catalog.parse(raw)
    assert info.value.field == "catalog"


async def test_the_store_uses_the_file_when_there_is_one(tmp_path: Path) -> None:
    path = tmp_path / "categories.json"
    store = CatalogStore(path)
    assert store.current is default_catalog()
    assert not await store.reload_if_changed()  # no file: the built-in catalog
    raw = _raw()
    raw["categories"][0]["handle_limit"] = {"type": "working_hours", "amount": 3}
    await store.replace(raw)
    assert store.current.get("roadside_parking").handle_limit == Limit("working_hours", 3)
    assert json.loads(path.read_text("utf-8"))["categories"][0]["handle_limit"]["amount"] == 3
    # an edit on disk (another hub process, or an admin's editor) is picked up
    other = CatalogStore(path)
    assert await other.reload_if_changed()
    raw["categories"][0]["handle_limit"] = {"type": "calendar_days", "amount": 1}
    path.write_text(json.dumps(raw), "utf-8")
    os.utime(path, (1, 1))
    assert await other.reload_if_changed()
    assert other.current.get("roadside_parking").handle_limit == Limit("calendar_days", 1)
    # a broken file is not used: the catalog in use stays
    path.write_text('{"majors": []}', "utf-8")
    os.utime(path, (2, 2))
    assert not await other.reload_if_changed()
    assert other.current.get("roadside_parking").handle_limit == Limit("calendar_days", 1)
    # an invalid replacement changes nothing, on disk or in memory
    with pytest.raises(Invalid):
        await store.replace({"majors": []})
    assert store.current.get("roadside_parking").handle_limit == Limit("working_hours", 3)
    path.unlink()
    assert await other.reload_if_changed() and other.current is default_catalog()
