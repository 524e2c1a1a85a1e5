"""Instructions and their recipients as the JSON-ready dicts of docs/API.md (epoch-second floats)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fusionhub.dispatch.models import Instruction, InstructionRecipient, User, to_epoch

# Recipient statuses: pending → (escalated →) acknowledged → reported.
PENDING, ESCALATED, ACKNOWLEDGED, REPORTED = "pending", "escalated", "acknowledged", "reported"
RECIPIENT_STATUSES = (PENDING, ESCALATED, ACKNOWLEDGED, REPORTED)


def _name(user: User | None) -> str | None:
    return None if user is None else user.display_name or user.username


def recipient_dict(rec: InstructionRecipient) -> dict[str, Any]:
    """`Recipient` of the API (`team`, `user`, `acknowledger`, `reporter` must be loaded)."""
    return {
        "id": rec.id,
        "instruction_id": rec.instruction_id,
        "kind": "team" if rec.team_id is not None else "user",
        "team_id": rec.team_id,
        "team_name": rec.team.name if rec.team is not None else None,
        "user_id": rec.user_id,
        "user_name": _name(rec.user),
        "region": rec.region,
        "status": rec.status,
        "ack_due_at": to_epoch(rec.ack_due_at),
        "escalated_at": to_epoch(rec.escalated_at),
        "acknowledged_at": to_epoch(rec.acknowledged_at),
        "acknowledged_by": rec.acknowledged_by,
        "acknowledged_by_name": _name(rec.acknowledger),
        "reported_at": to_epoch(rec.reported_at),
        "reported_by": rec.reported_by,
        "reported_by_name": _name(rec.reporter),
        "report_note": rec.report_note,
        "photo_url": (
            f"/api/v1/instructions/{rec.instruction_id}/recipients/{rec.id}/photo" if rec.photo_path else None
        ),
    }


def instruction_state(instr: Instruction, now: datetime) -> str:
    """cancelled, done (every recipient reported), overdue (deadline passed before that) or open."""
    if instr.cancelled_at is not None:
        return "cancelled"
    if instr.recipients and all(r.status == REPORTED for r in instr.recipients):
        return "done"
    return "overdue" if now > instr.deadline_at else "open"


def instruction_dict(instr: Instruction, now: datetime) -> dict[str, Any]:
    """`Instruction` of the API, with every recipient and the counts per status.

    `team_ids`, `user_ids` and `recipient_regions` let the websocket fan-out decide who may see it.
    """
    counts = dict.fromkeys(RECIPIENT_STATUSES, 0)
    for rec in instr.recipients:
        counts[rec.status] = counts.get(rec.status, 0) + 1
    counts["total"] = len(instr.recipients)
    return {
        "id": instr.id,
        "kind": instr.kind,
        "text": instr.text,
        "case_id": instr.case_id,
        "case_title": instr.case.title if instr.case is not None else None,
        "region": instr.region,
        "created_by": instr.created_by,
        "created_by_name": _name(instr.creator),
        "created_at": to_epoch(instr.created_at),
        "deadline_at": to_epoch(instr.deadline_at),
        "ack_within_s": instr.ack_within_s,
        "cancelled_at": to_epoch(instr.cancelled_at),
        "state": instruction_state(instr, now),
        "counts": counts,
        "recipients": [recipient_dict(r) for r in instr.recipients],
        "team_ids": sorted({r.team_id for r in instr.recipients if r.team_id is not None}),
        "user_ids": sorted({r.user_id for r in instr.recipients if r.user_id is not None}),
        "recipient_regions": sorted({r.region for r in instr.recipients}),
    }


def escalation_dict(instr: Instruction, rec: InstructionRecipient) -> dict[str, Any]:
    """The `dispatch.instruction_escalated` message: `region` is the recipient's, so that the
    commanders and duty officers over that recipient (and the sender) are told."""
    return {
        "instruction_id": instr.id,
        "kind": instr.kind,
        "text": instr.text,
        "created_by": instr.created_by,
        "instruction_region": instr.region,
        "region": rec.region,
        "escalated_at": to_epoch(rec.escalated_at),
        "recipient": recipient_dict(rec),
    }
