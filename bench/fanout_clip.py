"""The fan-out benchmark's camera clip: 720p, 25 fps, about 2 Mbit/s, real motion.

A slow pan and zoom over a real photo (ultralytics' bus.jpg, upscaled) so that every frame
differs and the encoder really spends its bitrate, as a street camera's would.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2

from fusionhub.media.democlip import bus_image


def make_fanout_clip(
    out: Path,
    *,
    seconds: float,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    bitrate: int = 2_000_000,
    gop_s: float = 2.0,
) -> Path:
    """Write (or reuse, when it already exists) an H.264 Main-profile MP4 of a panning crop."""
    if out.is_file():
        return out
    photo = cv2.imread(str(bus_image()), cv2.IMREAD_COLOR)
    if photo is None:
        raise RuntimeError("cannot read bus.jpg")
    # upscale so a 1280x720 window has room to pan and zoom over a 1.6x-larger canvas
    scale = 1.6 * max(width / photo.shape[1], height / photo.shape[0])
    canvas = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    ch, cw = canvas.shape[:2]
    gop = round(gop_s * fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.thread_type = "FRAME"  # one slice per frame, like most cameras
        kbps = bitrate // 1000
        stream.options = {
            "preset": "veryfast",
            "profile": "main",
            "x264-params": (
                f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:"
                f"vbv-maxrate={kbps}:vbv-bufsize={kbps}"
            ),
        }
        total = round(seconds * fps)
        for i in range(total):
            t = i / fps
            # zoom between 1.0 and 1.45 of the output size, centre on a slow Lissajous path
            zoom = 1.0 + 0.45 * (0.5 + 0.5 * math.sin(t / 7.0))
            w, h = round(width * zoom), round(height * zoom)
            cx = cw / 2 + (cw - w) / 2 * math.sin(t / 5.0)
            cy = ch / 2 + (ch - h) / 2 * math.sin(t / 3.3)
            x0 = min(max(0, round(cx - w / 2)), cw - w)
            y0 = min(max(0, round(cy - h / 2)), ch - h)
            crop = canvas[y0 : y0 + h, x0 : x0 + w]
            img = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    tmp.replace(out)
    return out
