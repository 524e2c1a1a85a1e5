"""The simulated camera of bench/analytics_capacity.py: 720p H.264 made from real photos, and
its 640x360 substream (the same pictures, as a camera's second stream shows them).

A street scene (ultralytics' bus.jpg and zidane.jpg side by side on a 2950x900 canvas) seen
through a slowly panning 16:9 window, so that every sample differs from the one before: the
motion gate gets no easy wins and every sample is a real detection job. 25 fps, a keyframe every
2 s (a common camera default), constrained-baseline H.264 like the cameras the hub pulls.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from fusionhub.media.democlip import bus_image
from fusionhub.media.pipeline import PacketPipeline

WIDTH, HEIGHT, FPS = 1280, 720, 25
SUBSTREAM = (640, 360)  # a common camera substream (D1 and CIF are the others)


def _canvas() -> np.ndarray:
    assets = bus_image().parent
    bus = cv2.imread(str(assets / "bus.jpg"))
    people = cv2.imread(str(assets / "zidane.jpg"))
    if bus is None or people is None:
        raise SystemExit(f"cannot read the ultralytics pictures in {assets}")
    h = 900
    left = cv2.resize(bus, (round(bus.shape[1] * h / bus.shape[0]), h), interpolation=cv2.INTER_AREA)
    middle = cv2.resize(people, (1600, h), interpolation=cv2.INTER_AREA)
    return np.concatenate([left, middle, left[:, ::-1]], axis=1)


def make_clip(out: Path, *, seconds: int = 20, gop_s: float = 2.0, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """Write the clip once (kept next to the data; about 5 s of CPU at 720p), return its path."""
    width, height = size
    if out.is_file():
        return out
    canvas = _canvas()
    crop_w = round(canvas.shape[0] * width / height)
    travel = canvas.shape[1] - crop_w
    gop = round(gop_s * FPS)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 0
        stream.options = {
            "crf": "26",
            "preset": "veryfast",
            "profile": "baseline",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0",
        }
        frames = seconds * FPS
        for i in range(frames):
            x = round(travel * (0.5 - 0.5 * math.cos(2 * math.pi * i / frames)))  # there and back, smoothly
            view = cv2.resize(canvas[:, x : x + crop_w], (width, height), interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(view.astype(np.uint8, copy=False), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    tmp.replace(out)
    return out


def play_through(pipeline: PacketPipeline, clip: Path, *, passes: int = 1) -> None:
    """Push every packet of `clip` through `pipeline` as fast as it goes (not paced), `passes`
    times; each pass starts a new stream, as a file camera's loop does."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for n in range(passes):
            if n:
                container.seek(0, stream=stream)
            pipeline.begin(stream)
            for packet in container.demux(stream):
                if packet.size:
                    pipeline.push(packet)
