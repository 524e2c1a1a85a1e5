"""What every part of the dispatch service shares: sessions, the clock, publishing after commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from fusionhub.dispatch.categories import CatalogStore
from fusionhub.dispatch.config import DispatchConfig
from fusionhub.dispatch.db import WRITE_OPTION
from fusionhub.dispatch.models import to_datetime
from fusionhub.dispatch.rollup import recording_sessions
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

Publish = Callable[[Topic, dict[str, Any]], Awaitable[None]]


class ServiceCore:
    """Holds the engine, session factories, data directory, bus publisher, clock, workflow config
    and the category catalog in use."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        data_dir: Path,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.time,
        config: DispatchConfig | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.engine = engine
        self.data_dir = Path(data_dir)
        self._publish = publish
        self._clock = clock
        # the workflow's time limits: working hours, catalog file, supervision (see dispatch/config.py)
        self.config = config if config is not None else DispatchConfig()
        self.timezone = timezone
        self.catalog = CatalogStore(self.data_dir / self.config.catalog_file)
        # expire_on_commit=False: the dicts handed out are built from objects after COMMIT
        # On PostgreSQL reads run without BEGIN/ROLLBACK: under READ COMMITTED every statement takes
        # its own snapshot anyway, so the transaction bought no consistency, only two more round
        # trips per read. SQLite keeps its BEGIN DEFERRED snapshot.
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        self._reader = async_sessionmaker(self._reads, expire_on_commit=False)
        # write sessions keep the statistics rollup with every timeline entry (rollup.py), by the
        # calendar days of the hub's time zone
        self._writes = engine.execution_options(**{WRITE_OPTION: True})
        self._writer = async_sessionmaker(
            self._writes,
            expire_on_commit=False,
            sync_session_class=recording_sessions(ZoneInfo(timezone)),
        )

    def read_session(self) -> AsyncSession:
        """A session for reading."""
        return self._reader()

    def read_connection(self) -> AsyncConnection:
        """A connection for reading plain rows (the board lists): no Session, no ORM objects."""
        return self._reads.connect()

    def write_session(self) -> AsyncSession:
        """A session for one read-modify-write unit of work (BEGIN IMMEDIATE on SQLite)."""
        return self._writer()

    @property
    def write_engine(self) -> AsyncEngine:
        """The engine for read-write units of work (BEGIN IMMEDIATE on SQLite)."""
        return self._writes

    def now(self) -> datetime:
        """The clock as an aware UTC datetime."""
        return to_datetime(self._clock())

    async def on_case_filed(self, session: AsyncSession, case: Any, now: datetime) -> None:
        """Called inside the transaction that files a case (any path: a confirmed flag, intake);
        the case service overrides it to start the case's dispatch clock."""

    async def emit(self, messages: list[tuple[Topic, dict[str, Any]]]) -> None:
        """Publish after COMMIT; the record is already safe, so a bus failure is logged, not raised."""
        if self._publish is None:
            return
        for topic, data in messages:
            try:
                await self._publish(topic, data)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not publish %s for id %s", topic, data.get("id"))
