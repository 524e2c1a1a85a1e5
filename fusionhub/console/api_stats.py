"""Statistics of the cases in the viewer's region: counters per group over a range of days, and
the problems that keep coming back."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from fusionhub.console.auth import require_role
from fusionhub.console.http import int_query, json_reply, user_of
from fusionhub.console.keys import DISPATCH
from fusionhub.dispatch.stats import parse_day

routes = web.RouteTableDef()

_ROLES = ["admin", "commander", "duty"]


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    return None if raw in (None, "") else parse_day(raw, name)


@routes.get("/api/v1/stats")
async def case_stats(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, _ROLES)
    return json_reply(
        await request.app[DISPATCH].case_stats(
            user,
            start=_day(request, "from"),
            end=_day(request, "to"),
            group_by=request.query.get("group_by", "category"),
        )
    )


@routes.get("/api/v1/stats/top")
async def top_problems(request: web.Request) -> web.Response:
    user = user_of(request)
    require_role(user, _ROLES)
    return json_reply(
        await request.app[DISPATCH].top_problems(
            user, start=_day(request, "from"), end=_day(request, "to"), limit=int_query(request, "limit", 10)
        )
    )
