"""Fixtures shared by every package's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# the test running now, for scripts/test.sh to name when the test process dies of a signal (a crash
# in native code can leave no traceback, and pytest's own output stops at the last line it flushed)
RUNNING = REPO / "var" / "test-running.txt"


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    RUNNING.parent.mkdir(exist_ok=True)
    RUNNING.write_text(nodeid + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    RUNNING.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def model_data_dir() -> Path:
    """The data directory holding the real detection model (fetched once, reused)."""
    from fusionhub.analytics.models import fetch_model

    data_dir = REPO / "var"
    fetch_model(data_dir)
    return data_dir
