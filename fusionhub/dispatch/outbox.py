"""The outbox: bus messages that must not be lost, written in the transaction of the change they
announce and published afterwards by `relay_outbox`.

`ServiceCore.emit` publishes after COMMIT and only logs a failure: right for answers to a user's
own action (the user sees the result in the reply). Work a supervisor loop does on its own (an
escalation, a reminder) has nobody waiting for it, so its messages go through here: a hub that
dies between COMMIT and publishing leaves them in the table, and the next relay (this process or
another, once the lease lapses) sends them. Delivery is at-least-once: a relay that dies after
publishing but before deleting sends that batch again, as the bus itself may.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fusionhub.dispatch.claims import claim_rows, lease_free, lease_until
from fusionhub.dispatch.core import Publish, ServiceCore
from fusionhub.dispatch.models import OutboxEntry
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

LEASE_S = 30.0


def enqueue(session: AsyncSession, messages: list[tuple[Topic, dict[str, Any]]], now: Any) -> None:
    """Add messages to the outbox inside the caller's transaction (they commit with it)."""
    for topic, data in messages:
        session.add(OutboxEntry(topic=str(topic), data=data, created_at=now, claimed_until=None, attempts=0))


async def relay_outbox(core: ServiceCore, publish: Publish, *, limit: int = 100, lease_s: float = LEASE_S) -> int:
    """Publish up to `limit` waiting messages, oldest first, and delete the ones sent.

    Returns how many were taken. A publish failure stops the batch; the rest are released at
    once for the next try (the failed one too).
    """
    now = core.now()
    async with core.read_session() as session:
        # most rounds find nothing: look before taking a write lock (BEGIN IMMEDIATE on SQLite)
        if await session.scalar(select(OutboxEntry.id).where(lease_free(OutboxEntry.claimed_until, now)).limit(1)) is None:
            return 0
    async with core.write_session() as session, session.begin():
        ids = await claim_rows(
            session,
            OutboxEntry,
            candidates=select(OutboxEntry.id)
            .where(lease_free(OutboxEntry.claimed_until, now))
            .order_by(OutboxEntry.id)
            .limit(limit),
            guard=lease_free(OutboxEntry.claimed_until, now),
            values={
                OutboxEntry.claimed_until: lease_until(now, lease_s),
                OutboxEntry.attempts: OutboxEntry.attempts + 1,
            },
            skip_locked=True,
        )
        if not ids:
            return 0
        result = await session.execute(
            select(OutboxEntry.id, OutboxEntry.topic, OutboxEntry.data)
            .where(OutboxEntry.id.in_(ids))
            .order_by(OutboxEntry.id)
        )
        rows = [(int(entry_id), str(topic), dict(data)) for entry_id, topic, data in result]
    sent: list[int] = []
    for entry_id, topic, data in rows:
        try:
            await publish(Topic(topic), data)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("outbox: could not publish %s (entry %s); will retry", topic, entry_id, exc_info=True)
            break
        sent.append(entry_id)
    done = set(sent)
    unsent = [entry_id for entry_id, _, _ in rows if entry_id not in done]
    async with core.write_session() as session, session.begin():
        if sent:
            await session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(sent)))
        if unsent:
            await session.execute(
                update(OutboxEntry).where(OutboxEntry.id.in_(unsent)).values(claimed_until=None)
            )
    return len(rows)
