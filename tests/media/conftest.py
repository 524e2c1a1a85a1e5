"""Fixtures for the media tests: one marked block per helper (ingest, then WebRTC)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

# ---- ingest fixtures (media ingest helper): real clips built with democlip ----------------

CLIP_FPS = 10
CLIP_GOP_S = 1.0


@pytest.fixture(scope="session")
def scene_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 s 640-wide demo clip (bus.jpg, vehicle absent then present), 10 fps, 1 s GOP."""
    from fusionhub.media.democlip import bus_image, make_scene_clip

    out = tmp_path_factory.mktemp("clips") / "scene.mp4"
    return make_scene_clip(
        out,
        image=bus_image(),
        seconds_empty=20,
        seconds_present=20,
        fps=CLIP_FPS,
        width=640,
        gop_s=CLIP_GOP_S,
    )


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s demo clip (1.5 s empty, 1.5 s with the bus), 320 wide, for looping tests."""
    from fusionhub.media.democlip import bus_image, make_scene_clip

    out = tmp_path_factory.mktemp("clips") / "short.mp4"
    return make_scene_clip(
        out,
        image=bus_image(),
        seconds_empty=1.5,
        seconds_present=1.5,
        fps=CLIP_FPS,
        width=320,
        gop_s=CLIP_GOP_S,
    )


@pytest.fixture(scope="session")
def inband_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MP4 whose keyframes carry SPS/PPS in-band too (x264 repeat-headers), 5 s, 320x240.

    For checking that the test camera's --params-in-sdp-only really strips in-band parameter
    sets (democlip's files keep them only in the avcC record).
    """
    out = tmp_path_factory.mktemp("clips") / "inband.mp4"
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.thread_type = "FRAME"
        stream.options = {"x264-params": "keyint=10:min-keyint=10:scenecut=0:bframes=0:repeat-headers=1"}
        for i in range(5 * CLIP_FPS):
            img = np.full((240, 320, 3), (i * 5) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, CLIP_FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


# ---- end of ingest fixtures ---------------------------------------------------------------


# ---- WebRTC relay / WHEP fixtures (WebRTC helper); helpers live in rtc_helpers.py ---------

from collections.abc import Iterator  # noqa: E402 -- kept inside this self-contained block

from fusionhub.media.packets import EncodedPacket  # noqa: E402


@pytest.fixture(scope="session")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x240, 30 fps, 2 s, High profile without B-frames (what many cameras send)."""
    from .rtc_helpers import make_h264_clip

    return make_h264_clip(tmp_path_factory.mktemp("rtc-clips") / "bar-320x240.mp4")


@pytest.fixture(scope="session")
def h264_packets(h264_clip: Path) -> list[EncodedPacket]:
    """The clip's packets as an ingest would hand them to a relay."""
    from .rtc_helpers import demux_annexb

    return demux_annexb(h264_clip)


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Host ICE candidates on 127.0.0.1 only, for hub and test client alike (process-wide)."""
    from fusionhub.media.ice import pin_host_addresses

    pin_host_addresses(["127.0.0.1"])
    try:
        yield
    finally:
        pin_host_addresses(None)


# ---- end of WebRTC relay / WHEP fixtures --------------------------------------------------


@pytest.fixture(params=["threads", "event_loop"])
def engine(request: pytest.FixtureRequest) -> str:
    """The RTSP engine under test (MediaConfig.rtsp_engine): a test that takes it runs on both."""
    return str(request.param)
