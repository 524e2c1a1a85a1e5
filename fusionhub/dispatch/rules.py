"""Auto-dispatch rules: category + region → team, or → a named person of that team for assets with
a responsible person ("one click to the person"). An admin edits the list as a whole."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Invalid
from fusionhub.dispatch.models import DispatchRule, Team, User

log = logging.getLogger(__name__)

MAX_RULES = 2000
RULE_READERS = ("admin", "commander", "duty")


def _covers(rule_region: str, region: str) -> bool:
    return region == rule_region or region.startswith(rule_region + ".")


def pick_rule(rules: Iterable[DispatchRule], category: str, region: str) -> DispatchRule | None:
    """The rule for a case: among rules whose region covers the case's region and whose category is
    the case's (or any), the deepest region wins, then a named category over "any", then list order."""
    best: tuple[int, int, int] | None = None
    chosen: DispatchRule | None = None
    for rule in rules:
        if rule.category not in (None, category) or not _covers(rule.region, region):
            continue
        rank = (rule.region.count(".") + 1, 1 if rule.category is not None else 0, -rule.position)
        if best is None or rank > best:
            best, chosen = rank, rule
    return chosen


def rule_dict(rule: DispatchRule) -> dict[str, Any]:
    """`DispatchRule` of the API (`team` and `user` loaded)."""
    return {
        "id": rule.id,
        "position": rule.position,
        "category": rule.category,
        "region": rule.region,
        "team_id": rule.team_id,
        "team_name": rule.team.name,
        "user_id": rule.user_id,
        "user_name": rule.user.display_name if rule.user is not None else None,
        "note": rule.note,
    }


def _text(raw: Mapping[str, Any], key: str, limit: int, *, required: bool, at: str) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{at}.{key}", "must be a non-empty string" if required else "must be a string or null")
    if len(value.strip()) > limit:
        raise Invalid(f"{at}.{key}", f"at most {limit} characters")
    return value.strip()


class RuleService(ServiceCore):
    """The auto-dispatch rules."""

    async def list_dispatch_rules(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Rules for regions in the viewer's region, in list order."""
        require_role(viewer, *RULE_READERS)
        async with self.read_session() as session:
            rules = await session.scalars(
                select(DispatchRule)
                .where(region_filter(DispatchRule.region, viewer))
                .options(selectinload(DispatchRule.team), selectinload(DispatchRule.user))
                .order_by(DispatchRule.position, DispatchRule.id)
            )
            return [rule_dict(r) for r in rules]

    async def replace_dispatch_rules(self, viewer: Viewer, raw_rules: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Admin replaces every rule of their region (and below) with `raw_rules`, validated as a whole:
        `{"category": code | null, "region", "team_id", "user_id"?: a field member of that team, "note"?}`."""
        require_role(viewer, "admin")
        if len(raw_rules) > MAX_RULES:
            raise Invalid("rules", f"at most {MAX_RULES} rules")
        catalog = self.catalog.current
        async with self.write_session() as session, session.begin():
            now = self.now()
            new: list[DispatchRule] = []
            for position, raw in enumerate(raw_rules):
                at = f"rules[{position}]"
                if not isinstance(raw, Mapping):
                    raise Invalid(at, "must be an object")
                unknown = set(raw) - {"category", "region", "team_id", "user_id", "note"}
                if unknown:
                    raise Invalid(at, f"unknown field {sorted(unknown)[0]!r}")
                category = _text(raw, "category", 64, required=False, at=at)
                if category is not None and catalog.find(category) is None:
                    raise Invalid(f"{at}.category", f"unknown category {category!r}")
                region = _text(raw, "region", 128, required=True, at=at)
                assert region is not None
                if not region_visible(viewer, region):
                    raise Invalid(f"{at}.region", f"{region!r} is not in your region")
                team = await self._rule_team(session, viewer, raw.get("team_id"), at)
                user = await self._rule_user(session, raw.get("user_id"), team, at)
                rule = DispatchRule(
                    position=position,
                    category=category,
                    region=region,
                    team_id=team.id,
                    user_id=user.id if user is not None else None,
                    note=_text(raw, "note", 256, required=False, at=at),
                    created_at=now,
                )
                rule.team, rule.user = team, user
                new.append(rule)
            await session.execute(
                delete(DispatchRule).where(region_filter(DispatchRule.region, viewer)).execution_options(
                    synchronize_session=False
                )
            )
            session.add_all(new)
            await session.flush()
        log.info("dispatch rules of region %s replaced by user %s: %d rules", viewer["region"], viewer["id"], len(new))
        return [rule_dict(r) for r in new]

    @staticmethod
    async def _rule_team(session: AsyncSession, viewer: Viewer, team_id: Any, at: str) -> Team:
        if not isinstance(team_id, int) or isinstance(team_id, bool):
            raise Invalid(f"{at}.team_id", "must be a team id")
        team = await session.get(Team, team_id)
        if team is None or not region_visible(viewer, team.region):
            raise Invalid(f"{at}.team_id", f"no team {team_id} in your region")
        return team

    @staticmethod
    async def _rule_user(session: AsyncSession, user_id: Any, team: Team, at: str) -> User | None:
        if user_id is None:
            return None
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise Invalid(f"{at}.user_id", "must be a user id or null")
        user = await session.get(User, user_id)
        if user is None or user.role != "field" or user.team_id != team.id:
            raise Invalid(f"{at}.user_id", f"user {user_id} is not a field member of team {team.id}")
        return user
