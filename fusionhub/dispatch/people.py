"""Users (scrypt passwords) and teams."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from fusionhub.dispatch.access import ROLES, Viewer, region_filter, require_role
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Duplicate, Invalid, NotFound
from fusionhub.dispatch.models import Team, User
from fusionhub.dispatch.passwords import DUMMY_HASH, hash_password, verify_password
from fusionhub.dispatch.views import team_dict, user_dict


def _text(field: str, value: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(field, "must not be empty")
    if len(value) > limit:
        raise Invalid(field, f"at most {limit} characters")
    return value


class PeopleService(ServiceCore):
    """Users and teams."""

    async def create_user(
        self,
        username: str,
        password: str,
        role: str,
        region: str,
        display_name: str,
        team_id: int | None = None,
    ) -> dict[str, Any]:
        """A new user; Duplicate if the username is taken, Invalid for a bad role or team."""
        username = _text("username", username, 64)
        region = _text("region", region, 128)
        display_name = _text("display_name", display_name, 64)
        if role not in ROLES:
            raise Invalid("role", f"one of {', '.join(ROLES)}")
        if not password:
            raise Invalid("password", "must not be empty")
        password_hash = await asyncio.to_thread(hash_password, password)
        try:
            async with self.write_session() as session, session.begin():
                if await session.scalar(select(User.id).where(User.username == username)) is not None:
                    raise Duplicate(f"the username {username!r} is taken")
                if team_id is not None and await session.get(Team, team_id) is None:
                    raise Invalid("team_id", f"no team {team_id}")
                user = User(
                    username=username,
                    display_name=display_name,
                    password_hash=password_hash,
                    role=role,
                    region=region,
                    team_id=team_id,
                    created_at=self.now(),
                )
                session.add(user)
        except IntegrityError as exc:  # a concurrent insert of the same name
            raise Duplicate(f"the username {username!r} is taken") from exc
        return user_dict(user)

    async def set_password(self, username: str, password: str) -> None:
        """Replace a user's password."""
        if not password:
            raise Invalid("password", "must not be empty")
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.write_session() as session, session.begin():
            user = await session.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"no user {username!r}")
            user.password_hash = password_hash

    async def authenticate(self, username: str, password: str) -> dict[str, Any] | None:
        """The user if the password matches, else None (same work whether or not the user exists)."""
        async with self.read_session() as session:
            user = await session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None else DUMMY_HASH
        ok = await asyncio.to_thread(verify_password, password, stored)
        return user_dict(user) if ok and user is not None else None

    async def get_user(self, user_id: int) -> dict[str, Any] | None:
        """The user with this id, or None (e.g. a token of a deleted user)."""
        async with self.read_session() as session:
            user = await session.get(User, user_id)
        return user_dict(user) if user is not None else None

    async def get_user_by_username(self, username: str) -> dict[str, Any] | None:
        """The user with this username, or None."""
        async with self.read_session() as session:
            user = await session.scalar(select(User).where(User.username == username))
        return user_dict(user) if user is not None else None

    async def list_users(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Users in the admin's region and below."""
        require_role(viewer, "admin")
        async with self.read_session() as session:
            users = await session.scalars(select(User).where(region_filter(User.region, viewer)).order_by(User.id))
            return [user_dict(u) for u in users]

    async def create_team(self, name: str, region: str) -> dict[str, Any]:
        """A new team (no members yet)."""
        team = Team(name=_text("name", name, 128), region=_text("region", region, 128), created_at=self.now())
        team.members = []
        async with self.write_session() as session, session.begin():
            session.add(team)
        return team_dict(team)

    async def list_teams(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Teams in the viewer's region and below, with their members."""
        async with self.read_session() as session:
            teams = await session.scalars(
                select(Team)
                .where(region_filter(Team.region, viewer))
                .options(selectinload(Team.members))
                .order_by(Team.id)
            )
            return [team_dict(t) for t in teams]
