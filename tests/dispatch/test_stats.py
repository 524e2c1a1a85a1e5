"""Statistics on a small day of cases walked through the real workflow, checked number by number,
on SQLite and PostgreSQL: counters per group, rates, overdue, time-zone days, region scoping,
and the recurring problems."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fusionhub.dispatch.errors import Forbidden, Invalid
from fusionhub.dispatch.stats import GROUPS
from tests.dispatch.conftest import Env

TZ = ZoneInfo("Asia/Shanghai")  # the fixture's service counts days in the default hub zone
DAY = date(2025, 3, 10)  # a Monday, a working day
EAST_ROAD = "No. 5 East Road"


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2025, 3, day, hour, minute, tzinfo=TZ).timestamp()


async def _case(env: Env, who: str, source: str, category: str, location: str, region: str | None = None) -> int:
    case = await env.service.create_case(
        env.user(who), source=source, category=category, location=location, region=region
    )
    return int(case["id"])


async def _day_of_cases(env: Env) -> dict[str, int]:
    """Six cases over two days (times in the hub's zone), through the real service."""
    s, cmd, duty = env.service, env.user("commander"), env.user("duty")
    patrol, second = env.team("patrol")["id"], env.team("second")["id"]
    ids: dict[str, int] = {}
    env.clock.t = at(9, 23, 50)  # F is filed late on the day before
    ids["F"] = await _case(env, "duty", "hotline", "fallen_tree", "Park gate")
    await s.file_case(duty, ids["F"])

    env.clock.t = at(10, 9, 0)
    ids["A"] = await _case(env, "duty", "hotline", "manhole_cover", EAST_ROAD)
    await s.file_case(duty, ids["A"])
    await s.dispatch_case(cmd, ids["A"], patrol)  # handling limit 4 urgent hours: due 13:00
    await s.dispatch_case(cmd, ids["F"], second)  # due 13:00
    env.clock.t = at(10, 9, 10)
    ids["B"] = await _case(env, "commander", "manual", "roadside_parking", "West gate", region="city.west")
    await s.file_case(duty, ids["B"])
    await s.dispatch_case(cmd, ids["B"], second)  # 2 urgent hours: due 11:10
    env.clock.t = at(10, 9, 20)
    ids["C"] = await _case(env, "duty", "hotline", "manhole_cover", EAST_ROAD)
    await s.file_case(duty, ids["C"])
    await s.dispatch_case(cmd, ids["C"], patrol)  # due 13:20, never acknowledged
    env.clock.t = at(10, 9, 30)
    ids["D"] = await _case(env, "duty", "hotline", "other", "Nowhere")
    await s.refuse_case(duty, ids["D"], "not a city-management matter")
    env.clock.t = at(10, 9, 40)
    ids["E"] = await _case(env, "field1", "patrol", "dirty_road", "Market street")
    await s.file_case(duty, ids["E"])  # dispatch limit 1 working hour: due 10:40, never dispatched

    env.clock.t = at(10, 10, 0)
    await s.acknowledge_case(env.user("field1"), ids["A"])
    await s.acknowledge_case(env.user("field2"), ids["B"])
    env.clock.t = at(10, 10, 5)
    await s.report_handled(env.user("field1"), ids["A"], "cover replaced")  # on time
    await s.verify_case(duty, ids["A"])
    env.clock.t = at(10, 12, 30)
    await s.report_handled(env.user("field2"), ids["B"], "car towed")  # late: due 11:10
    await s.verify_case(duty, ids["B"])
    env.clock.t = at(10, 14, 0)
    return ids


def _pick(metrics: dict[str, Any]) -> tuple[int, ...]:
    keys = ("filed", "dispatched", "handled", "handled_late", "closed", "on_time", "overdue_open", "overdue")
    return tuple(int(metrics[k]) for k in keys)


def _groups(stats: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {g["key"]: _pick(g) for g in stats["groups"]}


async def test_counters_rates_and_groups_are_exact(env: Env) -> None:
    s = env.service
    await _day_of_cases(env)
    cmd = env.user("commander")
    #                    filed disp hand late closed on_time overdue_open overdue
    stats = await s.case_stats(cmd, start=DAY, end=DAY, group_by="category")
    assert _pick(stats["totals"]) == (4, 4, 2, 1, 2, 1, 3, 4)
    assert stats["totals"]["closure_rate"] == 0.5 and stats["totals"]["on_time_rate"] == 0.5
    assert (stats["from"], stats["to"], stats["timezone"]) == ("2025-03-10", "2025-03-10", "Asia/Shanghai")
    assert _groups(stats) == {
        "manhole_cover": (2, 2, 1, 0, 1, 1, 1, 1),
        "roadside_parking": (1, 1, 1, 1, 1, 0, 0, 1),
        "dirty_road": (1, 0, 0, 0, 0, 0, 1, 1),
        "fallen_tree": (0, 1, 0, 0, 0, 0, 1, 1),
    }
    assert stats["by_status"] == {"closed": 2, "dispatched": 1, "refused": 1, "filed": 1}
    assert [(d["day"], d["filed"], d["closed"]) for d in stats["daily"]] == [("2025-03-10", 4, 2)]

    by_source = await s.case_stats(cmd, start=DAY, end=DAY, group_by="source")
    assert _groups(by_source) == {
        "hotline": (2, 3, 1, 0, 1, 1, 2, 2),
        "manual": (1, 1, 1, 1, 1, 0, 0, 1),
        "patrol": (1, 0, 0, 0, 0, 0, 1, 1),
    }
    patrol, second = str(env.team("patrol")["id"]), str(env.team("second")["id"])
    by_team = await s.case_stats(cmd, start=DAY, end=DAY, group_by="team")
    assert _groups(by_team) == {
        "-": (4, 0, 0, 0, 0, 0, 1, 1),  # filing happens before any team; E was never dispatched
        patrol: (0, 2, 1, 0, 1, 1, 1, 1),
        second: (0, 2, 1, 1, 1, 0, 1, 2),
    }
    assert {g["key"]: g["name"] for g in by_team["groups"]}[patrol] == "Patrol team 1"
    by_region = await s.case_stats(cmd, start=DAY, end=DAY, group_by="region")
    assert _groups(by_region) == {"city": (3, 3, 1, 0, 1, 1, 3, 3), "city.west": (1, 1, 1, 1, 1, 0, 0, 1)}
    by_status = await s.case_stats(cmd, start=DAY, end=DAY, group_by="status")
    assert {g["key"]: g["cases"] for g in by_status["groups"]} == stats["by_status"]
    assert _pick(by_status["totals"]) == _pick(stats["totals"])


async def test_days_follow_the_hub_time_zone(env: Env) -> None:
    s = env.service
    await _day_of_cases(env)
    cmd = env.user("commander")
    day_before = await s.case_stats(cmd, start=date(2025, 3, 9), end=date(2025, 3, 9))
    assert _pick(day_before["totals"])[:6] == (1, 0, 0, 0, 0, 0)  # F, at 23:50 local (15:50 UTC)
    both = await s.case_stats(cmd, start=date(2025, 3, 9), end=DAY)
    assert _pick(both["totals"]) == (5, 4, 2, 1, 2, 1, 3, 4)
    assert both["by_status"]["dispatched"] == 2
    assert [d["filed"] for d in both["daily"]] == [1, 4]
    later = await s.case_stats(cmd, start=date(2025, 3, 11), end=date(2025, 3, 12))
    assert _pick(later["totals"]) == (0,) * 8 and later["groups"] == []


async def test_statistics_are_scoped_to_the_viewers_region(env: Env) -> None:
    s = env.service
    await _day_of_cases(env)
    west = await s.case_stats(env.user("west_duty"), start=DAY, end=DAY, group_by="region")
    assert _pick(west["totals"]) == (1, 1, 1, 1, 1, 0, 0, 1)
    assert [g["key"] for g in west["groups"]] == ["city.west"] and west["by_status"] == {"closed": 1}
    for name in ("outsider", "cityx"):  # another region, and one whose name merely starts with "city"
        other = await s.case_stats(env.user(name), start=DAY, end=DAY)
        assert _pick(other["totals"]) == (0,) * 8 and other["by_status"] == {}
        assert (await s.top_problems(env.user(name), start=DAY, end=DAY))["problems"] == []
    with pytest.raises(Forbidden):
        await s.case_stats(env.user("field1"), start=DAY, end=DAY)


async def test_recurring_problems(env: Env) -> None:
    ids = await _day_of_cases(env)
    top = await env.service.top_problems(env.user("commander"), start=DAY, end=DAY)
    assert [(p["category"], p["location"], p["cases"], p["open"]) for p in top["problems"]] == [
        ("manhole_cover", EAST_ROAD, 2, 1)
    ]
    assert top["problems"][0]["last_case_id"] == ids["C"]
    # the return visit moves A from closed to evaluated: it is still finished, not open again
    await env.service.evaluate_case(env.user("duty"), ids["A"], 4)
    again = await env.service.top_problems(env.user("commander"), start=DAY, end=DAY)
    assert [(p["cases"], p["open"]) for p in again["problems"]] == [(2, 1)]


async def test_bad_ranges_are_refused(env: Env) -> None:
    s, cmd = env.service, env.user("commander")
    with pytest.raises(Invalid):
        await s.case_stats(cmd, start=date(2025, 3, 10), end=date(2025, 3, 9))
    with pytest.raises(Invalid):
        await s.case_stats(cmd, start=date(2020, 1, 1), end=date(2025, 1, 1))
    with pytest.raises(Invalid):
        await s.case_stats(cmd, group_by="weather")
    with pytest.raises(Invalid):
        await s.top_problems(cmd, limit=0)
    default = await s.case_stats(cmd)
    assert len(default["daily"]) == 30


async def test_board_lists_overdue_cases_and_a_teams_inbox(env: Env) -> None:
    s = env.service
    ids = await _day_of_cases(env)
    cmd = env.user("commander")
    overdue = await s.list_cases(cmd, overdue=True)
    assert [c["id"] for c in overdue] == [ids["E"], ids["F"], ids["C"]]  # longest overdue first
    assert [c["id"] for c in await s.list_cases(env.user("west_duty"), overdue=True)] == []
    assert [c["id"] for c in await s.list_cases(cmd, "dispatched")] == [ids["C"], ids["F"]]
    assert len(await s.list_cases(cmd, limit=2)) == 2
    inbox = await s.list_tasks(env.user("field1"), open_only=True)
    assert [t["case_id"] for t in inbox] == [ids["C"]]  # A's task is done
    assert {t["case_id"] for t in await s.list_tasks(env.user("field1"))} == {ids["A"], ids["C"]}
    with pytest.raises(Invalid):
        await s.list_cases(cmd, limit=0)


async def test_a_region_name_with_like_wildcards_matches_only_itself(env: Env) -> None:
    """Region scoping is a LIKE on the dotted path: `_` and `%` in a region's name are escaped, so
    a duty officer of `city.w_st` sees `city.w_st.*`, not `city.west` (whose name `w_st` would match)."""
    s = env.service
    env.clock.t = at(10, 9, 0)
    mine = await _case(env, "commander", "manual", "roadside_parking", "Lane 1", region="city.w_st.s1")
    await _case(env, "commander", "manual", "roadside_parking", "West gate", region="city.west.s1")
    await _case(env, "commander", "manual", "roadside_parking", "Percent row", region="city.w%")
    viewer = {**env.user("west_duty"), "region": "city.w_st"}
    assert [c["id"] for c in await s.list_cases(viewer)] == [mine]
    stats = await s.case_stats(viewer, start=DAY, end=DAY, group_by="region")
    assert stats["totals"]["filed"] == 0 and [g["key"] for g in stats["groups"]] == []
    assert sum(stats["by_status"].values()) == 1  # the one reported case in city.w_st
    await s.fold_rollup()
    assert await s.case_stats(viewer, start=DAY, end=DAY, group_by="region") == stats
    assert (await s.case_stats(viewer, start=DAY, end=DAY))["by_status"] == stats["by_status"]


async def test_transitions_journal_their_counters_and_folding_changes_no_figure(env: Env) -> None:
    """Transitions only insert counter deltas (no shared row to wait for); folding them into the
    rollup and its per-area sums, even by two hubs at once, leaves every figure as it was, for the
    city and for a district, half folded or all."""
    s = env.service
    await _day_of_cases(env)
    cmd, west = env.user("commander"), env.user("west_duty")
    journal = await env.count("case_stat_deltas")
    assert journal > 0 and await env.count("case_stats") == 0 and await env.count("case_stat_areas") == 0

    async def figures() -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (viewer["username"], g): await s.case_stats(viewer, start=DAY, end=DAY, group_by=g)
            for viewer in (cmd, west)
            for g in GROUPS
        }

    before = await figures()
    assert before[("west_duty", "category")]["totals"]["filed"] > 0
    assert before[("west_duty", "category")]["totals"] != before[("commander", "category")]["totals"]
    first, second = await asyncio.gather(s.fold_rollup(limit=7), s.fold_rollup(limit=7))
    assert first + second <= 14 and await env.count("case_stat_deltas") == journal - first - second
    assert await env.count("case_stat_areas") > 0 and await figures() == before  # half folded
    while await s.fold_rollup(limit=7):
        pass
    assert await env.count("case_stat_deltas") == 0 and await env.count("case_stats") > 0
    assert await figures() == before
    # new transitions journal again on top of the folded rows, and the sum stays exact
    env.clock.t = at(10, 15, 0)
    await s.acknowledge_case(env.user("field1"), (await s.list_cases(cmd, "dispatched"))[0]["id"])
    assert await env.count("case_stat_deltas") > 0
    again = await s.case_stats(cmd, start=DAY, end=DAY, group_by="status")
    assert again["by_status"]["handling"] == before[("commander", "status")]["by_status"].get("handling", 0) + 1
