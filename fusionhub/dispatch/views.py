"""Records as the JSON-ready dicts of docs/API.md (epoch-second floats, no credentials)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import inspect

from fusionhub.dispatch.camera_settings import analysis_view, sampling_view
from fusionhub.dispatch.categories import get_category
from fusionhub.dispatch.clock import clock_dict
from fusionhub.dispatch.errors import Invalid
from fusionhub.dispatch.models import (
    Attachment,
    Camera,
    Case,
    CaseEvent,
    CaseExtension,
    Flag,
    Task,
    Team,
    User,
    Zone,
    to_epoch,
)
from fusionhub.dispatch.zonerules import default_rule


def strip_credentials(url: str) -> tuple[str, bool]:
    """The URL without user and password, and whether it had any."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), True


def user_dict(user: User) -> dict[str, Any]:
    """`User` of the API; also the Viewer the service methods take."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "region": user.region,
        "team_id": user.team_id,
    }


def team_dict(team: Team) -> dict[str, Any]:
    """A team with its members (`members` must be loaded)."""
    return {
        "id": team.id,
        "name": team.name,
        "region": team.region,
        "members": [user_dict(u) for u in team.members],
    }


def zone_dict(zone: Zone) -> dict[str, Any]:
    """`Zone` of the API."""
    return {
        "id": zone.id,
        "camera_id": zone.camera_id,
        "name": zone.name,
        "kind": zone.kind,
        "polygon": zone.polygon,
        "dwell_s": zone.dwell_s,
        "classes": zone.classes,
        "rule": zone.rule or default_rule(zone.kind),
        "min_count": zone.min_count or 1,
        "windows": zone.windows or [],
        "realert_s": zone.realert_s,
        "threshold": zone.threshold,
        "reference_at": to_epoch(zone.reference_at),
        "reference_url": (
            f"/api/v1/cameras/{zone.camera_id}/zones/{zone.id}/reference.png" if zone.reference_path else None
        ),
    }


def camera_dict(camera: Camera) -> dict[str, Any]:
    """`Camera` of the API without the live `status` (the console merges it); credentials removed."""
    url, has_credentials = strip_credentials(camera.url)
    sub, sub_credentials = strip_credentials(camera.substream_url) if camera.substream_url else (None, False)
    return {
        "id": camera.id,
        "name": camera.name,
        "region": camera.region,
        "url": url,
        "has_credentials": has_credentials,
        "substream_url": sub,
        "substream_has_credentials": sub_credentials,
        "enabled": camera.enabled,
        "sampling": sampling_view(camera.sampling),
        "analysis": analysis_view(camera.analysis),
        "zones": [zone_dict(z) for z in camera.zones],
    }


def flag_dict(flag: Flag) -> dict[str, Any]:
    """`Flag` of the API (`reviewer` must be loaded)."""
    return {
        "id": flag.id,
        "camera_id": flag.camera_id,
        "camera_name": flag.camera_name,
        "zone_id": flag.zone_id,
        "zone_name": flag.zone_name,
        "rule": flag.rule,
        "label": flag.label,
        "confidence": flag.confidence,
        "boxes": flag.boxes,
        "frame_width": flag.frame_width,
        "frame_height": flag.frame_height,
        "evidence_url": f"/api/v1/flags/{flag.id}/evidence.jpg",
        "has_frame": flag.frame_path is not None,
        "first_seen_at": to_epoch(flag.first_seen_at),
        "raised_at": to_epoch(flag.raised_at),
        "status": flag.status,
        "reviewed_by": flag.reviewed_by,
        "reviewed_by_name": flag.reviewer.display_name if flag.reviewer is not None else None,
        "reviewed_at": to_epoch(flag.reviewed_at),
        "dismiss_reason": flag.dismiss_reason,
        "case_id": flag.case_id,
        "region": flag.region,
        **clip_fields(flag),
    }


def clip_fields(flag: Flag) -> dict[str, Any]:
    """A flag's clip as the API shows it: `clip_url` only while the clip is ready."""
    ready = flag.clip_state == "ready"
    return {
        "clip_url": f"/api/v1/flags/{flag.id}/clip.mp4" if ready else None,
        "clip_state": flag.clip_state,
        "clip_reason": flag.clip_reason,
        "clip_start": to_epoch(flag.clip_start_at),
        "clip_end": to_epoch(flag.clip_end_at),
    }


def event_dict(event: CaseEvent) -> dict[str, Any]:
    """`Event` of the API (`actor` must be loaded)."""
    return event_view(event, event.actor)


def event_view(event: Any, actor: Any) -> dict[str, Any]:
    """`Event` of the API from anything with an entry's attributes (an ORM CaseEvent, a row) and
    its actor (anything with a user's id, username, display_name and role; None: the system)."""
    return {
        "seq": event.seq,
        "at": to_epoch(event.at),
        "actor": (
            {"id": actor.id, "username": actor.username, "display_name": actor.display_name, "role": actor.role}
            if actor is not None
            else None
        ),
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "note": event.note,
        "data": event.data,
        "hash": event.hash,
    }


def attachment_dict(att: Attachment) -> dict[str, Any]:
    """An attachment as listed on its case; `url` is the API route that serves it."""
    return {
        "id": att.id,
        "kind": att.kind,
        "url": f"/api/v1/cases/{att.case_id}/attachments/{att.id}",
        "content_type": att.content_type,
        "created_at": to_epoch(att.created_at),
    }


def task_dict(task: Task, case: Case) -> dict[str, Any]:
    """`Task` of the API, plus `region` so websocket fan-out can filter (`team` must be loaded)."""
    return task_fields(task, task.team.name, case.title, case.status, case.region)


def task_fields(task: Any, team_name: str, case_title: str, case_status: str, region: str) -> dict[str, Any]:
    """`Task` of the API from anything with a task's attributes (an ORM Task or a Core row)."""
    return {
        "id": task.id,
        "case_id": task.case_id,
        "case_title": case_title,
        "case_status": case_status,
        "team_id": task.team_id,
        "team_name": team_name,
        "status": task.status,
        "deadline_at": to_epoch(task.deadline_at),
        "created_at": to_epoch(task.created_at),
        "acknowledged_at": to_epoch(task.acknowledged_at),
        "acknowledged_by": task.acknowledged_by,
        "done_at": to_epoch(task.done_at),
        "assignee_id": task.assignee_id,
        "region": region,
    }


def extension_dict(ext: CaseExtension) -> dict[str, Any]:
    """`Extension` of the API: a team's request for more time and the centre's decision."""
    return {
        "id": ext.id,
        "status": ext.status,
        "limit": {"type": ext.limit_type, "amount": ext.amount},
        "reason": ext.reason,
        "requested_by": ext.requested_by,
        "requested_at": to_epoch(ext.requested_at),
        "old_due_at": to_epoch(ext.old_due_at),
        "new_due_at": to_epoch(ext.new_due_at),
        "decided_by": ext.decided_by,
        "decided_at": to_epoch(ext.decided_at),
        "decision_note": ext.decision_note,
    }


def workflow_fields(case: Case) -> dict[str, Any]:
    """The intake, clock, extension and return-visit fields of a case (revision 0002). The clock and
    extensions appear when they were loaded (every case service query loads them)."""
    out = intake_fields(case)
    unloaded = inspect(case).unloaded
    if "clock" not in unloaded:
        out["clock"] = clock_dict(case.clock)
    if "extensions" not in unloaded:
        out["extensions"] = [extension_dict(e) for e in case.extensions]
    return out


def intake_fields(case: Any) -> dict[str, Any]:
    """The intake and return-visit fields of a case (an ORM Case or a Core row)."""
    return {
        "description": case.description,
        "contact": case.contact,
        "reported_by": case.reported_by,
        "suspended_from": case.suspended_from,
        "satisfaction": case.satisfaction,
    }


def _category_names(code: str) -> tuple[str, str]:
    try:
        cat = get_category(code)
    except Invalid:  # a code from an older catalog: show it as it is
        return code, code
    return cat.name_zh, cat.name_en


def case_dict(case: Case, *, timeline: bool = True) -> dict[str, Any]:
    """`Case` of the API; team, attachments, tasks (with team) and, with `timeline`, events
    (with actor) must be loaded."""
    out = case_fields(case, case.team.name if case.team is not None else None)
    out["attachments"] = [attachment_dict(a) for a in case.attachments]
    out["tasks"] = [task_dict(t, case) for t in case.tasks]
    out.update(workflow_fields(case))
    if timeline:
        out["timeline"] = [event_dict(e) for e in case.events]
    return out


def case_fields(case: Any, team_name: str | None) -> dict[str, Any]:
    """The case's own columns as the API shows them (an ORM Case or a Core row), in API order;
    `case_dict` and the board lists (board.py) add attachments, tasks and the workflow fields."""
    name_zh, name_en = _category_names(case.category)
    return {
        "id": case.id,
        "title": case.title,
        "status": case.status,
        "source": case.source,
        "category": case.category,
        "category_name": name_zh,
        "category_name_en": name_en,
        "camera_id": case.camera_id,
        "zone_id": case.zone_id,
        "region": case.region,
        "location": case.location,
        "flag_id": case.flag_id,
        "team_id": case.team_id,
        "team_name": team_name,
        "deadline_at": to_epoch(case.deadline_at),
        "created_at": to_epoch(case.created_at),
        "updated_at": to_epoch(case.updated_at),
    }
