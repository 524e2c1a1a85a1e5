"""What every part of the dispatch service shares: sessions, the clock, publishing after commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fusionhub.dispatch.db import WRITE_OPTION
from fusionhub.dispatch.models import to_datetime
from fusionhub.signaling.messages import Topic

log = logging.getLogger(__name__)

Publish = Callable[[Topic, dict[str, Any]], Awaitable[None]]


class ServiceCore:
    """Holds the engine, session factories, data directory, bus publisher and clock."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        data_dir: Path,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.data_dir = Path(data_dir)
        self._publish = publish
        self._clock = clock
        # expire_on_commit=False: the dicts handed out are built from objects after COMMIT
        self._reader = async_sessionmaker(engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def read_session(self) -> AsyncSession:
        """A session for reading."""
        return self._reader()

    def write_session(self) -> AsyncSession:
        """A session for one read-modify-write unit of work (BEGIN IMMEDIATE on SQLite)."""
        return self._writer()

    def now(self) -> datetime:
        """The clock as an aware UTC datetime."""
        return to_datetime(self._clock())

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
