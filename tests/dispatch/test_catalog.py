"""The default category catalog and rule defaults."""

from __future__ import annotations

import pytest

from fusionhub.dispatch.categories import category_for_rule, get_category, load_categories
from fusionhub.dispatch.errors import Invalid


def test_catalog_has_the_default_categories() -> None:
    cats = load_categories()
    assert [c.code for c in cats] == [
        "roadside_parking", "overflowing_bin", "exposed_garbage", "dirty_road", "business_outside_shop",
        "piled_materials", "damaged_road", "manhole_cover", "other",
    ]
    assert get_category("roadside_parking").name_zh == "占道停车"
    assert get_category("other").name_zh == "其他"
    assert all(c.deadline_hours > 0 and c.name_en for c in cats)
    assert set(cats[0].as_dict()) == {"code", "name_zh", "name_en", "deadline_hours"}


def test_rules_map_to_their_default_category() -> None:
    assert category_for_rule("occupied_road").code == "roadside_parking"
    assert category_for_rule("overflowing_bin").code == "overflowing_bin"
    assert category_for_rule("something_new").code == "other"


def test_unknown_category_is_invalid_input() -> None:
    with pytest.raises(Invalid) as info:
        get_category("parking")
    assert info.value.field == "category" and info.value.code == "invalid_input"
