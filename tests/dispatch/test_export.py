"""The printable export: self-contained, evidence embedded, and it tells an edited timeline entry
or a replaced evidence file from an intact record (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import text

from fusionhub.dispatch.errors import NotFound
from tests.dispatch.conftest import Env


async def test_export_embeds_evidence_and_checks_the_chain(env: Env) -> None:
    s = env.service
    flag, case = await env.filed_case()
    cid = case["id"]
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    page = await s.export_case(env.user("commander"), cid)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "完整 intact" in page and "BROKEN" not in page and "MISMATCH" not in page
    evidence = (env.data_dir / f"evidence/{flag['id']}.jpg").read_bytes()
    assert f'src="data:image/jpeg;base64,{base64.b64encode(evidence).decode()}"' in page
    got = await s.get_case(env.user("commander"), cid)
    for entry in got["timeline"]:
        assert entry["hash"] in page
    assert page.count('<span class="ok">✓</span>') == len(got["timeline"])
    # what a user may not see, they cannot export
    with pytest.raises(NotFound):
        await s.export_case(env.user("outsider"), cid)
    with pytest.raises(NotFound):
        await s.export_case(env.user("field2"), cid)


async def test_export_shows_an_edited_entry_and_a_replaced_file(env: Env) -> None:
    s = env.service
    flag, case = await env.filed_case()
    cid = case["id"]
    await s.dispatch_case(env.user("commander"), cid, env.team("patrol")["id"])
    await s.acknowledge_case(env.user("field1"), cid)
    # someone with database rights rewrites who dispatched the case, past the append-only trigger
    async with env.engine.begin() as conn:
        if env.backend == "sqlite":
            await conn.execute(text("DROP TRIGGER case_events_no_update"))
        else:
            await conn.execute(text("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only"))
        await conn.execute(
            text("UPDATE case_events SET note = 'ordered by the mayor' WHERE case_id = :cid AND seq = 2"), {"cid": cid}
        )
        if env.backend == "postgres":
            await conn.execute(text("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only"))
    # and swaps the evidence picture on disk
    (env.data_dir / f"evidence/{flag['id']}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the original")
    page = await s.export_case(env.user("duty"), cid)
    assert "已损坏 BROKEN" in page and "MISMATCH" in page
    rows = re.findall(r"<tr><td>(\d+)</td>.*?<td class=\"hash\">(<span class=\"(?:ok|bad)\">.)</span>", page, re.S)
    marks = {int(seq): "✓" in mark for seq, mark in rows}
    assert marks == {1: True, 2: False, 3: True}  # entry 3 still follows entry 2's stored hash
    assert "SHA-256 ✗" in page
    assert not await s.verify_timeline(cid)
