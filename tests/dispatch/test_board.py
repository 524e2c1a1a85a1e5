"""The board's lists (board.py: Core rows) show a case exactly as its own page does without the
timeline, and a task exactly as the websocket pushes it."""

from __future__ import annotations

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
