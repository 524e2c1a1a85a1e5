"""The deadline supervisor (督办): warnings at a share of the limit and at the deadline, reminders to
the team and its commander at an interval while a case is overdue, a penalty mark after the
configured number of unanswered reminders.

What is due lives in `case_clocks.next_check_at`, so a restart finds it. Any number of hub
processes may run a supervisor: each claims due clocks with one guarded UPDATE … RETURNING (on
PostgreSQL the candidates are taken FOR UPDATE SKIP LOCKED; SQLite runs one writer at a time), as a
lease. Each claimed clock is then handled in its own transaction that locks the row, checks the
claim and `next_check_at` once more, moves the clock on, writes the timeline entries and queues the
alerts in the outbox — all or nothing. So a reminder is recorded exactly once (never lost across a
restart: an unfinished claim lapses and is taken over) and pushed at least once. Writing to a case
bumps its version, so a person's concurrent action on the same case gets a clean 409.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from fusionhub.dispatch import clock, rollup
from fusionhub.dispatch.branches import BranchService
from fusionhub.dispatch.cases import _case_options
from fusionhub.dispatch.claims import DueLoop, claim_rows, lease_free, lease_until
from fusionhub.dispatch.models import Case, CaseClock, to_epoch
from fusionhub.dispatch.outbox import enqueue
from fusionhub.dispatch.timeline import append_event
from fusionhub.dispatch.views import case_dict
from fusionhub.signaling.messages import CaseAlert, Topic, payload

log = logging.getLogger(__name__)


def _lock_busy(exc: DBAPIError) -> bool:
    """PostgreSQL's lock_not_available (55P03): a NOWAIT lock was held by another transaction."""
    orig = exc.orig
    return "55P03" in (getattr(orig, "pgcode", None), getattr(orig, "sqlstate", None))


def worker_name() -> str:
    """A name for one supervisor, unique across hosts, processes and instances."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class SupervisionService(BranchService):
    """The supervisor's database work (the loop that drives it is `Supervisor`)."""

    async def fold_rollup(self, *, limit: int = 5000) -> int:
        """Fold up to `limit` journaled statistics deltas into the rollup (dispatch/rollup.py); the
        rows folded. Statistics read the same either way: this only keeps the journal short."""
        async with self.write_session() as session, session.begin():
            return await rollup.fold(session, limit=limit)

    async def claim_due_clocks(self, worker: str, *, now: datetime | None = None, limit: int | None = None) -> list[int]:
        """Claim (lease) up to `limit` clocks whose check is due; returns their ids."""
        now = now or self.now()
        mine_or_free = or_(lease_free(CaseClock.claimed_until, now), CaseClock.claimed_by == worker)
        due = and_(CaseClock.next_check_at.is_not(None), CaseClock.next_check_at <= now, mine_or_free)
        async with self.write_session() as session, session.begin():
            return await claim_rows(
                session,
                CaseClock,
                candidates=select(CaseClock.id)
                .where(due)
                .order_by(CaseClock.next_check_at)
                .limit(limit or self.config.claim_batch)
                .with_for_update(skip_locked=True),
                guard=due,
                values={
                    CaseClock.claimed_by: worker,
                    CaseClock.claimed_until: lease_until(now, self.config.claim_lease_s),
                },
            )

    async def check_clock(self, worker: str, clock_id: int) -> list[dict[str, Any]]:
        """Handle one claimed clock: the alerts it produced (already queued in the outbox with its
        timeline entries), or [] when it was not ours any more or nothing was due."""
        sup = self.supervision()
        async with self.write_session() as session, session.begin():
            # NOWAIT: a person's transaction on this case is under way; never wait for it (it may be
            # waiting for us: a deadlock), try again next round
            row = await session.scalar(select(CaseClock).where(CaseClock.id == clock_id).with_for_update(nowait=True))
            now = self.now()
            if row is None or row.claimed_by != worker:
                return []  # our lease lapsed and another supervisor took it over
            row.claimed_by, row.claimed_until = None, None
            if row.next_check_at is None or row.next_check_at > now:
                return []  # someone acted on the case since the claim
            case = await session.scalar(
                select(Case).where(Case.id == row.case_id).options(*_case_options()).with_for_update(nowait=True, of=Case)
            )
            assert case is not None
            notices = clock.check(row, now, sup)
            alerts: list[dict[str, Any]] = []
            for notice in notices:
                append_event(
                    case, actor=None, action=notice.action, from_status=case.status, to_status=case.status,
                    at=now, data=notice.data,
                )
                alerts.append(
                    payload(
                        CaseAlert(
                            case_id=case.id,
                            title=case.title,
                            kind=notice.kind,  # type: ignore[arg-type]
                            stage=row.stage,  # type: ignore[arg-type]
                            status=case.status,
                            due_at=to_epoch(row.due_at) or 0.0,
                            reminder=int(notice.data.get("reminder", 0)),
                            unanswered=int(notice.data.get("unanswered", 0)),
                            team_id=case.team_id,
                            region=case.region,
                            at=now.timestamp(),
                        )
                    )
                )
            if notices:
                # the case's version moves on: a person's action that read the case before this
                # commit fails its version check (409) instead of writing over the supervisor's
                flag_modified(case, "updated_at")
                messages = [(Topic.CASE_ALERT, a) for a in alerts]
                messages.append((Topic.CASE_CHANGED, case_dict(case, timeline=False)))
                enqueue(session, messages, now)
        for alert in alerts:
            log.info("case %s: %s (%s stage, reminder %s)", alert["case_id"], alert["kind"], alert["stage"], alert["reminder"])
        return alerts

    async def supervise_due(self, worker: str, *, limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """One round: claim what is due and handle it. Returns (clocks claimed, alerts raised)."""
        ids = await self.claim_due_clocks(worker, limit=limit)
        alerts: list[dict[str, Any]] = []
        for clock_id in ids:
            try:
                alerts.extend(await self.check_clock(worker, clock_id))
            except (IntegrityError, StaleDataError):
                # a timeline entry of the same case was written at the same moment: the claim stays
                # ours, the next round takes the clock again
                log.info("clock %s: the case changed meanwhile; retrying next round", clock_id)
            except DBAPIError as exc:
                if not _lock_busy(exc):
                    raise
                log.debug("clock %s: its case is being changed; retrying next round", clock_id)
        return len(ids), alerts


FOLD_BATCH = 5000  # rollup journal rows folded per round (more rounds follow at once while it is full)


class Supervisor:
    """Runs the supervision rounds (and the catalog file check) on a DueLoop it owns."""

    def __init__(self, service: SupervisionService, *, relay: Any | None = None, name: str | None = None) -> None:
        self.service = service
        self.name = name or worker_name()
        self._relay = relay
        self._loop = DueLoop(f"supervisor {self.name}", self.tick, interval_s=service.config.supervisor_poll_s)
        self.alerts = 0

    async def tick(self) -> bool:
        """One round; True when a full batch was claimed (more may be due)."""
        await self.service.catalog.reload_if_changed()
        claimed, alerts = await self.service.supervise_due(self.name)
        self.alerts += len(alerts)
        if alerts and self._relay is not None:
            self._relay()  # the outbox relay publishes them now rather than at its next interval
        folded = await self.service.fold_rollup(limit=FOLD_BATCH)  # keeps the statistics journal short
        return claimed >= self.service.config.claim_batch or folded >= FOLD_BATCH

    def start(self) -> None:
        """Start the loop (a second call does nothing)."""
        self._loop.start()

    def poke(self) -> None:
        """Look now (e.g. after a deadline was set close)."""
        self._loop.poke()

    async def stop(self) -> None:
        """Stop the loop; safe twice."""
        await self._loop.stop()
