"""A case as one printable, self-contained HTML file: its fields, its evidence pictures embedded,
its timeline with every entry's hash, and the result of checking the hash chain and each file's
SHA-256 at the moment of export. Nothing is loaded from elsewhere, so the file can be archived,
mailed or printed as it is."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from fusionhub.dispatch import files
from fusionhub.dispatch.access import Viewer
from fusionhub.dispatch.cases import CaseService
from fusionhub.dispatch.models import CaseEvent
from fusionhub.dispatch.timeline import chain_report, ends_at_head
from fusionhub.dispatch.views import case_dict

# pictures larger than this are listed with their hash but not embedded (the file stays printable)
MAX_EMBED_BYTES = 8 * 1024 * 1024
EMBEDDED_TYPES = ("image/jpeg", "image/png")

_CSS = """
body{font:14px/1.45 "Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 8px;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#eee}.fields th{width:14em}.hash{font-family:monospace;font-size:11px;word-break:break-all}
.ok{color:#0a6b2b;font-weight:bold}.bad{color:#b00020;font-weight:bold}
figure{display:inline-block;margin:0 12px 12px 0;max-width:46%;vertical-align:top;page-break-inside:avoid}
figure img{max-width:100%;border:1px solid #999}figcaption{font-size:12px}
tr{page-break-inside:avoid}.muted{color:#666}
@media print{body{margin:0}}
"""


@dataclass(frozen=True)
class FileCheck:
    """An attachment as found on disk at export time."""

    attachment_id: int
    content_type: str
    stored_sha256: str
    actual_sha256: str | None  # None: the file is missing
    data: bytes | None  # the bytes to embed (pictures within the limit)

    @property
    def intact(self) -> bool:
        """The file is there and its SHA-256 is the recorded one."""
        return self.actual_sha256 == self.stored_sha256


def _read_checked(path: Path | None, stored: str, content_type: str, att_id: int) -> FileCheck:
    if path is None or not path.is_file():
        return FileCheck(att_id, content_type, stored, None, None)
    data = path.read_bytes()
    embed = content_type in EMBEDDED_TYPES and len(data) <= MAX_EMBED_BYTES
    return FileCheck(att_id, content_type, stored, hashlib.sha256(data).hexdigest(), data if embed else None)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _time(epoch: float | None, tz: ZoneInfo) -> str:
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def render_case_html(
    case: dict[str, Any],
    *,
    chain: list[bool],
    complete: bool,
    checks: dict[int, FileCheck],
    tz: ZoneInfo,
    exported_at: float,
    exported_by: str,
) -> str:
    """The printable page of a case (a `case_dict` with timeline); `complete`: the newest entry is
    the head the case recorded (nothing was removed from the end)."""
    intact = bool(chain) and all(chain) and complete
    files_ok = all(c.intact for c in checks.values())
    clock = case.get("clock") or {}
    rows = [
        ("编号 Case", f"#{case['id']}"),
        ("标题 Title", case["title"]),
        ("状态 Status", case["status"]),
        ("来源 Source", case["source"]),
        ("类别 Category", f"{case.get('category_name') or ''} / {case.get('category_name_en') or ''} ({case['category']})"),
        ("区域 Region", case["region"]),
        ("位置 Location", case["location"]),
        ("描述 Description", case.get("description")),
        ("联系人 Contact", case.get("contact")),
        ("处置单位 Team", case.get("team_name")),
        ("时限 Deadline", _time(case.get("deadline_at"), tz)),
        ("督办 Supervision", f"{clock.get('state', '—')} · reminders {clock.get('reminders', 0)} · penalties {clock.get('penalties', 0)}"),
        ("满意度 Satisfaction", case.get("satisfaction")),
        ("立案时间 Created", _time(case.get("created_at"), tz)),
        ("更新时间 Updated", _time(case.get("updated_at"), tz)),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>案件 Case #{_e(case['id'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>案件 Case #{_e(case['id'])} · {_e(case['title'])}</h1>",
        f'<p class="muted">导出 Exported {_e(_time(exported_at, tz))} by {_e(exported_by)}</p>',
        "<h2>校验 Verification</h2><p>",
        f'时间线哈希链 Timeline hash chain: <span class="{"ok" if intact else "bad"}">'
        f'{"完整 intact" if intact else "已损坏 BROKEN"}</span> ({len(chain)} entries'
        f'{"" if complete else "; 末尾条目缺失 entries missing from the end"})<br>',
        f'附件 Files: <span class="{"ok" if files_ok else "bad"}">'
        f'{"全部一致 all match their recorded SHA-256" if files_ok else "不一致 MISMATCH or missing"}</span></p>',
        '<h2>案件信息 Case</h2><table class="fields">',
        *(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows),
        "</table>",
        "<h2>证据 Evidence</h2>",
    ]
    if not case["attachments"]:
        parts.append('<p class="muted">无 None</p>')
    for att in case["attachments"]:
        check = checks.get(int(att["id"]))
        state = (
            '<span class="bad">missing</span>' if check is None or check.actual_sha256 is None
            else '<span class="ok">SHA-256 ✓</span>' if check.intact else '<span class="bad">SHA-256 ✗</span>'
        )
        caption = f"{_e(att['kind'])} #{_e(att['id'])} · {_e(_time(att.get('created_at'), tz))} · {state}"
        digest = f'<div class="hash">{_e(check.stored_sha256 if check else "")}</div>'
        if check is not None and check.data is not None:
            src = f"data:{check.content_type};base64,{base64.b64encode(check.data).decode('ascii')}"
            parts.append(f'<figure><img src="{src}" alt="{_e(att["kind"])}"><figcaption>{caption}{digest}</figcaption></figure>')
        else:
            parts.append(f"<p>{caption} ({_e(att['content_type'])}){digest}</p>")
    parts += [
        "<h2>时间线 Timeline</h2>",
        "<table><tr><th>#</th><th>时间 Time</th><th>人员 Actor</th><th>动作 Action</th><th>状态 Status</th>"
        "<th>说明 Note / data</th><th>哈希 Hash</th></tr>",
    ]
    for entry, ok in zip(case["timeline"], chain + [False] * (len(case["timeline"]) - len(chain)), strict=False):
        actor = entry.get("actor")
        who = f"{actor['display_name']} ({actor['role']})" if actor else "系统 system"
        move = entry["to_status"] if entry["from_status"] == entry["to_status"] else f"{entry['from_status'] or '—'} → {entry['to_status']}"
        data = json.dumps(entry.get("data") or {}, ensure_ascii=False, sort_keys=True)
        mark = '<span class="ok">✓</span>' if ok else '<span class="bad">✗</span>'
        parts.append(
            f"<tr><td>{_e(entry['seq'])}</td><td>{_e(_time(entry['at'], tz))}</td><td>{_e(who)}</td>"
            f"<td>{_e(entry['action'])}</td><td>{_e(move)}</td>"
            f"<td>{_e(entry.get('note') or '')}<div class=\"hash\">{_e(data)}</div></td>"
            f'<td class="hash">{mark} {_e(entry["hash"])}</td></tr>'
        )
    parts += ["</table>", "</body></html>"]
    return "\n".join(parts)


class ExportService(CaseService):
    """The printable export of a case."""

    async def export_case(self, viewer: Viewer, case_id: int) -> str:
        """The case as a self-contained printable HTML page (NotFound if the viewer may not see it)."""
        async with self.read_session() as session:
            case = await self._case(session, viewer, case_id)
            events = list(
                await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
            )
        out = case_dict(case)
        chain = chain_report(events)
        complete = ends_at_head(events, case.timeline_head)
        checks: dict[int, FileCheck] = {}
        for att in case.attachments:
            path = files.resolve(self.data_dir, att.path)
            checks[att.id] = await asyncio.to_thread(_read_checked, path, att.sha256, att.content_type, att.id)
        return render_case_html(
            out,
            chain=chain,
            complete=complete,
            checks=checks,
            tz=ZoneInfo(self.timezone),
            exported_at=self.now().timestamp(),
            exported_by=str(viewer.get("display_name") or viewer.get("username")),
        )
