"""Demo records for `fusionhub demo`: region "demo", one patrol team, one user per role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fusionhub.dispatch.service import DispatchService

DEMO_REGION = "demo"
DEMO_TEAM = "第一巡查中队 / Patrol team 1"
# username -> (role, display name); field1 joins the demo team
DEMO_USERS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "管理员 / Admin"),
    "commander": ("commander", "指挥长 / Commander"),
    "duty": ("duty", "值班员 / Duty officer"),
    "field1": ("field", "巡查员一 / Field officer 1"),
}


async def seed_demo(
    service: DispatchService, *, passwords: Mapping[str, str], region: str = DEMO_REGION
) -> dict[str, Any]:
    """Create the demo team and users if missing (idempotent); existing users get the given password.

    Returns {"team": Team, "users": {username: User}}.
    """
    missing = set(DEMO_USERS) - set(passwords)
    if missing:
        raise ValueError(f"seed_demo: no password for {', '.join(sorted(missing))}")
    probe = {"id": 0, "username": "", "display_name": "", "role": "admin", "region": region, "team_id": None}
    team = next((t for t in await service.list_teams(probe) if t["name"] == DEMO_TEAM and t["region"] == region), None)
    if team is None:
        team = await service.create_team(DEMO_TEAM, region)
    users: dict[str, Any] = {}
    for username, (role, display_name) in DEMO_USERS.items():
        user = await service.get_user_by_username(username)
        if user is None:
            user = await service.create_user(
                username,
                passwords[username],
                role,
                region,
                display_name,
                team_id=team["id"] if role == "field" else None,
            )
        elif await service.authenticate(username, passwords[username]) is None:
            await service.set_password(username, passwords[username])
        users[username] = user
    return {"team": team, "users": users}
