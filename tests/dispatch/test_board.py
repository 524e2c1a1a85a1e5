"""The board's lists (board.py: Core rows on SQLite, JSON built by PostgreSQL) show a case exactly
as its own page does without the timeline, and a task exactly as the websocket pushes it."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text

from fusionhub.signaling.messages import Topic
from tests.dispatch.conftest import Env
from tests.dispatch.test_cases import _jpeg


async def test_lists_match_the_case_and_task_shapes(env: Env) -> None:
    s = env.service
    _flag, case = await env.filed_case()
    cid = case["id"]
    cmd, field = env.user("commander"), env.user("field1")
    await s.dispatch_case(cmd, cid, env.team("patrol")["id"])
    await s.acknowledge_case(field, cid)
    await s.request_extension(field, cid, 1, "waiting for the tow truck")
    await s.report_handled(field, cid, "moved", photo=_jpeg(), photo_type="image/jpeg")
    env.published.clear()
    await s.reject_case(env.user("duty"), cid, "still there")  # a second push of the task

    page = await s.get_case(cmd, cid)
    page.pop("timeline")
    assert page["attachments"] and page["extensions"] and page["tasks"] and page["clock"] is not None
    [listed] = [c for c in await s.list_cases(cmd) if c["id"] == cid]
    assert listed == page
    assert [c for c in await s.list_cases(cmd, "handling") if c["id"] == cid] == [page]
    assert [c for c in await s.list_cases(field) if c["id"] == cid] == [page]  # the team's case
    assert not [c for c in await s.list_cases(cmd, overdue=True) if c["id"] == cid]
    env.clock.t += 400 * 86400  # long past the handling deadline: on the supervision board too
    assert [c for c in await s.list_cases(cmd, overdue=True) if c["id"] == cid] == [page]

    pushed = dict(env.published)[Topic.TASK_CHANGED]
    assert [t for t in await s.list_tasks(field, open_only=True) if t["case_id"] == cid] == [pushed]
    assert [t for t in await s.list_tasks(cmd) if t["case_id"] == cid] == [pushed]


async def test_lists_show_unusual_cases_as_their_pages_do(env: Env) -> None:
    """A reported case (no clock, no team, no task) with a photo and text that JSON must escape, a
    case whose category the catalog no longer has, and a list with nothing in it: on both paths
    (rows built in Python; PostgreSQL: JSON built by the database) as the case page shows them."""
    s = env.service
    duty = env.user("duty")
    odd = await s.create_case(
        duty, source="hotline", category="exposed_garbage", location='No. 5 "Jiefang" Road\\n 解放路 \u2028 tab\there',
        description="bags 🛍 on the pavement\nsecond line", contact="Ms Chen 138-0000-0000",
        photo=_jpeg(), photo_type="image/jpeg",
    )
    retired = await s.create_case(duty, source="manual", category="dirty_road", location="Gate 3")
    async with env.engine.begin() as conn:  # a code an admin has since removed from the catalog
        await conn.execute(text("UPDATE cases SET category = 'retired_code' WHERE id = :id"), {"id": retired["id"]})
    cmd = env.user("commander")
    listed = await s.list_cases(cmd, "reported")
    for case in (odd, retired):
        page = await s.get_case(cmd, case["id"])
        page.pop("timeline")
        assert [c for c in listed if c["id"] == case["id"]] == [page]
    odd_page = next(c for c in listed if c["id"] == odd["id"])
    assert odd_page["clock"] is None and odd_page["tasks"] == [] and odd_page["team_name"] is None
    assert odd_page["location"] == 'No. 5 "Jiefang" Road\\n 解放路 \u2028 tab\there'
    assert [a["kind"] for a in odd_page["attachments"]] == ["photo"]
    retired_page = next(c for c in listed if c["id"] == retired["id"])
    assert (retired_page["category_name"], retired_page["category_name_en"]) == ("retired_code", "retired_code")
    assert [c["id"] for c in listed] == sorted((c["id"] for c in listed), reverse=True)  # newest first
    assert await s.list_cases(cmd, "evaluated") == []
    assert await s.list_cases(cmd, overdue=True) == []
    assert await s.list_tasks(env.user("field1"), open_only=True) == []


async def test_cancelled_list_reads_leave_the_pool_working(env: Env) -> None:
    """Board reads cancelled at every point (a console that navigated away mid-request; on
    PostgreSQL the statements run straight on the driver): the next reads answer in full, from
    the same pool."""
    s = env.service
    _flag, case = await env.filed_case()
    cmd = env.user("commander")
    await s.dispatch_case(cmd, case["id"], env.team("patrol")["id"])
    expected_cases, expected_tasks = await s.list_cases(cmd), await s.list_tasks(cmd)
    expected_stats = await s.case_stats(cmd)
    for ticks in range(30):  # cancelled after 0, 1, 2, ... turns of the event loop
        for call in (s.list_cases(cmd), s.list_tasks(cmd), s.case_stats(cmd)):
            task = asyncio.ensure_future(call)
            for _ in range(ticks):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert await s.list_cases(cmd) == expected_cases
    assert await s.list_tasks(cmd) == expected_tasks
    assert await s.case_stats(cmd) == expected_stats
