"""Fixtures: every dispatch test runs on SQLite (a file) and on real PostgreSQL (a scratch database).

Users and teams (scrypt-hashed passwords, the slow part) are created once per backend: into a
template SQLite file copied per test, and into the session's PostgreSQL database, whose other
tables are emptied before each test.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import cv2
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fusionhub.dispatch.db import create_engine, upgrade
from fusionhub.dispatch.service import DispatchService
from fusionhub.signaling.messages import Box, FlagRaised, Topic

T = TypeVar("T")

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
PASSWORD = "correct horse battery"

# username -> (role, region, team key)
USERS: dict[str, tuple[str, str, str | None]] = {
    "admin": ("admin", "city", None),
    "commander": ("commander", "city", None),
    "duty": ("duty", "city", None),
    "field1": ("field", "city", "patrol"),
    "field2": ("field", "city", "second"),
    "outsider": ("duty", "elsewhere", None),
    "cityx": ("duty", "cityx", None),  # a region whose name merely starts with "city"
    "west_duty": ("duty", "city.west", None),
}
TEAMS = {"patrol": ("Patrol team 1", "city"), "second": ("Patrol team 2", "city"), "far": ("Far team", "elsewhere")}
# tables emptied between PostgreSQL tests (users and teams are kept)
RECORD_TABLES = (
    "case_events, attachments, tasks, flags, cases, zones, cameras, "
    "instruction_recipients, instructions, outbox, case_stats, case_stat_areas, case_stat_deltas, "
    "case_clocks, case_extensions, dispatch_rules, calendar_overrides"
)


@dataclass
class World:
    """The seeded people: user and team dicts by key."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)


class Clock:
    """A clock that moves on by `step` seconds each time it is read (distinct, ordered times)."""

    def __init__(self, start: float, step: float = 0.25) -> None:
        self.t = start
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


async def _seed(url: str) -> World:
    engine = create_engine(url)
    try:
        service = DispatchService(engine, data_dir=Path("/nonexistent"))
        world = World()
        for key, (name, region) in TEAMS.items():
            world.teams[key] = await service.create_team(name, region)
        for username, (role, region, team) in USERS.items():
            world.users[username] = await service.create_user(
                username, PASSWORD, role, region, username.title(),
                team_id=world.teams[team]["id"] if team else None,
            )
        return world
    finally:
        await engine.dispose()


async def _admin_sql(sql: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in a helper thread: session fixtures are
    first requested from inside a test's running loop, where asyncio.run is not allowed."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    path = tmp_path_factory.mktemp("dispatch-template") / "template.db"
    url = f"sqlite+aiosqlite:///{path}"
    _run(upgrade(url))
    world = _run(_seed(url))
    return path, world


@pytest.fixture(scope="session")
def pg_database() -> Iterator[tuple[str, World]]:
    """A uniquely named scratch database for this test session, dropped at the end."""
    name = f"fh_dispatch_{uuid.uuid4().hex[:12]}"
    _run(_admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_SERVER + name
        _run(upgrade(url))
        yield url, _run(_seed(url))
    finally:
        _run(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Env:
    """One test's dispatch service on one backend, with what it published."""

    backend: str
    url: str
    engine: AsyncEngine
    service: DispatchService
    data_dir: Path
    world: World
    clock: Clock
    published: list[tuple[Topic, dict[str, Any]]]

    def user(self, name: str) -> dict[str, Any]:
        return self.world.users[name]

    def team(self, key: str) -> dict[str, Any]:
        return self.world.teams[key]

    def topics(self) -> list[Topic]:
        return [t for t, _ in self.published]

    def new_service(self, engine: AsyncEngine) -> DispatchService:
        async def publish(topic: Topic, data: dict[str, Any]) -> None:
            self.published.append((topic, data))

        return DispatchService(engine, data_dir=self.data_dir, publish=publish, clock=self.clock)

    async def count(self, table: str, where: str = "1=1") -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"))).scalar_one())

    async def camera(self, region: str = "city", name: str = "Gate 3") -> tuple[dict[str, Any], dict[str, Any]]:
        cam = await self.service.create_camera(self.user("admin"), name, "rtsp://op:pw@127.0.0.1:9/s", region)
        zone = await self.service.add_zone(
            self.user("admin"), cam["id"], "lane", "road", [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], 30, ["car"]
        )
        return cam, zone

    def flag_msg(self, camera_id: int, zone_id: int, *, evidence: bool = True) -> FlagRaised:
        flag_id = str(uuid.uuid4())
        rel = f"evidence/{flag_id}.jpg"
        if evidence:
            path = self.data_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, jpeg = cv2.imencode(".jpg", np.full((36, 64, 3), 90, np.uint8))
            assert ok
            path.write_bytes(jpeg.tobytes())
        now = self.clock.t
        return FlagRaised(
            flag_id=flag_id,
            camera_id=camera_id,
            zone_id=zone_id,
            zone_name="lane",
            rule="occupied_road",
            label="car",
            confidence=0.87,
            boxes=[Box(x1=1, y1=20, x2=30, y2=34, label="car", confidence=0.87, track_id=3)],
            frame_width=64,
            frame_height=36,
            evidence_path=rel,
            first_seen_at=now - 40,
            raised_at=now - 5,
        )

    async def filed_case(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A camera, a flag on it, confirmed by duty: (flag, case)."""
        cam, zone = await self.camera()
        flag = await self.service.record_flag(self.flag_msg(cam["id"], zone["id"]))
        return await self.service.confirm_flag(self.user("duty"), flag["id"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    if request.param == "sqlite":
        template, world = request.getfixturevalue("sqlite_template")
        db = tmp_path / "dispatch.db"
        shutil.copyfile(template, db)
        url = f"sqlite+aiosqlite:///{db}"
    else:
        url, world = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    if request.param == "postgres":
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {RECORD_TABLES} RESTART IDENTITY CASCADE"))
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    env = Env(request.param, url, engine, None, data_dir, world, Clock(time.time()), [])  # type: ignore[arg-type]
    env.service = env.new_service(engine)
    try:
        yield env
    finally:
        await engine.dispose()
