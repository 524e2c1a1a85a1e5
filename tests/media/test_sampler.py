"""Sample scaling: one swscale thread, so hundreds of cameras do not mean hundreds of idle threads."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from fusionhub.media.sampler import downscale


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2, reason="Linux, 2 CPUs or more")
def test_scaling_the_samples_of_many_cameras_starts_no_threads() -> None:
    rng = np.random.default_rng(3)
    frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (720, 1280, 3), np.uint8), format="bgr24").reformat(
        format="yuv420p"
    )
    scalers = [VideoReformatter() for _ in range(20)]  # the samplers of 20 cameras
    before = _threads()
    for scaler in scalers:
        small = downscale(frame, 640, scaler)
        same = downscale(frame, 1280, scaler)  # converted only
    after = _threads()
    assert small.shape == (360, 640, 3) and same.shape == (720, 1280, 3)
    # swscale's default gave each scaler a slice-thread pool of its own (2 threads each here)
    assert after - before < 5, (before, after)
