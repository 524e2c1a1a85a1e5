"""Who may see and do what: region scoping and role checks, applied by every service method."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_
from sqlalchemy.orm import InstrumentedAttribute

from fusionhub.dispatch.errors import Forbidden

ROLES: tuple[str, ...] = ("admin", "commander", "duty", "field")

# A viewer is the User dict the service hands out: id, username, display_name, role, region, team_id.
Viewer = Mapping[str, Any]


def region_visible(viewer: Viewer, region: str | None) -> bool:
    """A viewer sees their own region and every region below it (dotted paths)."""
    if region is None:
        return False
    mine = str(viewer["region"])
    return region == mine or region.startswith(mine + ".")


def region_filter(column: InstrumentedAttribute[str] | ColumnElement[Any], viewer: Viewer) -> ColumnElement[bool]:
    """The SQL form of region_visible (LIKE wildcards in region names are escaped)."""
    mine = str(viewer["region"])
    return or_(column == mine, column.startswith(mine + ".", autoescape=True))


def region_filter_bound(column: InstrumentedAttribute[str] | ColumnElement[Any]) -> ColumnElement[bool]:
    """region_filter with the viewer's region as bound parameters (`region_params`), for statements
    built once and run for every viewer."""
    return or_(column == bindparam("region"), column.like(bindparam("region_below"), escape="/"))


def region_params(viewer: Viewer) -> dict[str, str]:
    """The parameters of region_filter_bound for a viewer (LIKE wildcards in the name escaped)."""
    mine = str(viewer["region"])
    below = mine.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return {"region": mine, "region_below": below + ".%"}


def require_role(viewer: Viewer, *roles: str) -> None:
    """Forbidden unless the viewer has one of the roles."""
    if viewer["role"] not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}; you are {viewer['role']}")
