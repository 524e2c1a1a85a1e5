"""Fixtures shared by every package's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_data_dir() -> Path:
    """The data directory holding the real detection model (fetched once, reused)."""
    from fusionhub.analytics.models import fetch_model

    data_dir = REPO / "var"
    fetch_model(data_dir)
    return data_dir
