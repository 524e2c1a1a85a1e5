"""Real pictures and the real model for the analytics tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fusionhub.analytics.models import ModelFiles, fetch_model

# where the bus of ultralytics' bus.jpg (810x1080) stands, with a margin
BUS_BOX = (0, 215, 810, 775)


@pytest.fixture(scope="session")
def model_files(model_data_dir: Path) -> ModelFiles:
    """The fetched model (the shared fixture fetched it; this reads back what is there)."""
    return fetch_model(model_data_dir)


@pytest.fixture(scope="session")
def bus_jpg() -> np.ndarray:
    """Ultralytics' test picture: a bus on a street with four people."""
    import ultralytics  # only to find its asset; the runtime never imports it

    path = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


@pytest.fixture(scope="session")
def bus_frame(bus_jpg: np.ndarray) -> np.ndarray:
    """A sampled frame as the media gateway hands it over: downscaled (405x540)."""
    return cv2.resize(bus_jpg, (405, 540), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def empty_frame(bus_frame: np.ndarray) -> np.ndarray:
    """The same street with the bus (and whoever stands in front of it) painted over in grey."""
    out = bus_frame.copy()
    x1, y1, x2, y2 = (v // 2 for v in BUS_BOX)
    out[y1:y2, x1:x2] = (128, 128, 128)
    return out
