"""The case timeline's hash chain: each entry's hash covers the previous hash and the entry itself."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from fusionhub.dispatch.models import Case, CaseEvent, User

GENESIS = "0" * 64


def canonical_entry(
    *,
    case_id: int,
    seq: int,
    at: datetime,
    actor_id: int | None,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    data: dict[str, Any],
) -> bytes:
    """The entry as canonical JSON (sorted keys, no spaces, UTF-8), the bytes that are hashed."""
    entry = {
        "case_id": case_id,
        "seq": seq,
        "at": at.isoformat(),
        "actor_id": actor_id,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data,
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_hash: str, entry: bytes) -> str:
    """sha256 over the previous hash and the canonical entry, hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + entry).hexdigest()


def event_hash(event: CaseEvent, prev_hash: str) -> str:
    """Recompute the hash a stored event should have after `prev_hash`."""
    return chain_hash(
        prev_hash,
        canonical_entry(
            case_id=event.case_id,
            seq=event.seq,
            at=event.at,
            actor_id=event.actor_id,
            action=event.action,
            from_status=event.from_status,
            to_status=event.to_status,
            note=event.note,
            data=event.data,
        ),
    )


def chain_report(events: Iterable[CaseEvent]) -> list[bool]:
    """For each entry (in seq order): does it follow from the one before (seq, prev hash, own hash)?"""
    out: list[bool] = []
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        out.append(event.seq == expected_seq and event.prev_hash == prev and event_hash(event, prev) == event.hash)
        prev = event.hash
    return out


def ends_at_head(events: Sequence[CaseEvent], head: str | None) -> bool:
    """Whether the newest entry is the one the case recorded as its head (none removed from the end)."""
    return bool(events) and events[-1].hash == head


def chain_intact(events: Sequence[CaseEvent], head: str | None) -> bool:
    """Whether events (in seq order) form an unbroken chain from the genesis hash, seq 1, 2, 3…,
    ending at the case's recorded head."""
    return all(chain_report(events)) and ends_at_head(events, head)


def entry_values(
    *,
    case_id: int,
    prev: str,
    seq: int,
    actor_id: int | None,
    action: str,
    from_status: str | None,
    to_status: str,
    at: datetime,
    note: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The columns of a new timeline entry after `prev` (the hash of the entry before it), its
    own hash included."""
    entry: dict[str, Any] = {
        "case_id": case_id,
        "seq": seq,
        "at": at,
        "actor_id": actor_id,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data,
    }
    return {**entry, "prev_hash": prev, "hash": chain_hash(prev, canonical_entry(**entry))}


def append_event(
    case: Case,
    *,
    actor: User | None,
    action: str,
    from_status: str | None,
    to_status: str,
    at: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Chain a new entry onto the case's timeline (`case.events` loaded, `case.id` assigned).

    Two writers racing to append both compute the same seq; the unique (case_id, seq) and the
    case's version column make exactly one of them commit.
    """
    events = case.events
    values = entry_values(
        case_id=case.id,
        prev=events[-1].hash if events else GENESIS,
        seq=len(events) + 1,
        actor_id=actor.id if actor is not None else None,
        action=action,
        from_status=from_status,
        to_status=to_status,
        at=at,
        note=note,
        data=dict(data or {}),
    )
    event = CaseEvent(**values)
    event.actor = actor
    events.append(event)
    case.timeline_head = values["hash"]
    return event
