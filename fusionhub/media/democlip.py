"""Build the demo camera's clip: a real street photo, first without its vehicle, then with it.

The demo camera (FileLoopSource) plays this clip in a loop, so analytics sees an empty road for a
while and then a vehicle "arriving" -- a real YOLO detection on a real photo, no synthetic boxes.
"""

from __future__ import annotations

import importlib.util
import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import MediaError

log = logging.getLogger(__name__)

# The bus in ultralytics' bus.jpg (810x1080), in original pixels: x1, y1, x2, y2.
BUS_BOX = (0, 227, 805, 760)
# A strip of plain pavement at the bottom of bus.jpg, used as the texture that hides the bus.
_ROAD_STRIP_Y = (960, 1080)


def bus_image() -> Path:
    """Path of ultralytics' bundled bus.jpg (found without importing ultralytics, which is heavy)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise MediaError("ultralytics is not installed: no default demo image")
    path = Path(spec.origin).parent / "assets" / "bus.jpg"
    if not path.is_file():
        raise MediaError(f"demo image not found: {path}")
    return path


def _remove_vehicle(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cover the vehicle with pavement texture tiled from the bottom of the photo.

    The cover runs from the box's top down to the bottom of the photo (and to the side edges
    when the box nearly touches them): people standing in front of the vehicle would otherwise
    be left as cut-off legs, which looks odd. The seam along the top is softened.
    """
    h, w = img.shape[:2]
    x1, y1, x2, _ = box
    x1 = 0 if x1 < w // 50 else x1
    x2 = w if w - x2 < w // 50 else min(x2, w)
    strip = img[min(_ROAD_STRIP_Y[0], h - 1) : min(_ROAD_STRIP_Y[1], h), :]
    # Mirror-tile the strip so repeats meet without hard edges.
    tile = np.concatenate([strip, strip[::-1]], axis=0)
    reps = (h - y1) // tile.shape[0] + 1
    texture = np.tile(tile, (reps, 1, 1))[: h - y1, x1:x2]
    out = img.copy()
    out[y1:h, x1:x2] = texture
    band = 4
    ys, ye = max(y1 - band, 0), min(y1 + band, h)
    out[ys:ye, x1:x2] = cv2.GaussianBlur(out[ys:ye, x1:x2], (2 * band + 1, 2 * band + 1), 0)
    return out


def _fit_width(img: np.ndarray, width: int) -> np.ndarray:
    """Scale to `width` keeping aspect, then pad to even dimensions (yuv420p needs them)."""
    h, w = img.shape[:2]
    height = max(2, round(h * width / w))
    scaled = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    pad_b, pad_r = height % 2, width % 2
    if pad_b or pad_r:
        scaled = cv2.copyMakeBorder(scaled, 0, pad_b, 0, pad_r, cv2.BORDER_REPLICATE)
    return scaled


def _open_encoder(container: av.container.OutputContainer, fps: int, gop: int) -> av.VideoStream:
    """An H.264 stream: libx264 when present, else whatever H.264 encoder this FFmpeg has."""
    for name in ("libx264", "h264"):
        try:
            stream = container.add_stream(name, rate=fps)
        except (av.error.FFmpegError, ValueError) as exc:  # encoder not built in
            log.debug("encoder %s unavailable: %s", name, exc)
            continue
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 0
        # Slice threading would split every frame into several slices; cameras commonly send
        # one slice per frame, and a test RTSP server that repeats SPS/PPS per slice would
        # otherwise cut keyframes in two.
        stream.codec_context.thread_type = "FRAME"
        if stream.codec_context.name == "libx264":
            # Constrained baseline plays in every WebRTC browser; a fixed GOP without scene-cut
            # keyframes gives viewers and the sampler a keyframe exactly every gop frames.
            stream.options = {
                "crf": "28",
                "preset": "veryfast",
                "profile": "baseline",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0",
            }
        return stream
    raise MediaError("this FFmpeg build has no H.264 encoder")


def make_scene_clip(
    out: Path,
    *,
    image: Path,
    seconds_empty: float,
    seconds_present: float,
    fps: int = 10,
    width: int = 1280,
    gop_s: float = 1.0,
) -> Path:
    """Write an H.264 MP4 of `image`: `seconds_empty` with the vehicle removed, then the photo as is.

    The vehicle box is `BUS_BOX` scaled from bus.jpg's 810 px width to the image's width.
    Blocking (encodes every frame): call it from a thread or at set-up time.
    """
    if fps < 1 or width < 16 or gop_s <= 0 or seconds_empty < 0 or seconds_present < 0:
        raise ValueError("fps >= 1, width >= 16, gop_s > 0 and non-negative durations required")
    photo = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if photo is None:
        raise MediaError(f"cannot read image {image}")
    k = photo.shape[1] / 810
    box = (
        round(BUS_BOX[0] * k),
        round(BUS_BOX[1] * k),
        round(BUS_BOX[2] * k),
        round(BUS_BOX[3] * k),
    )
    present = _fit_width(photo, width)
    empty = _fit_width(_remove_vehicle(photo, box), width)
    gop = max(1, round(gop_s * fps))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = _open_encoder(container, fps, gop)
        stream.width, stream.height = present.shape[1], present.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        plan = [(empty, round(seconds_empty * fps)), (present, round(seconds_present * fps))]
        pts = 0
        for img, count in plan:
            if count == 0:
                continue
            frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
            for _ in range(count):
                frame.pts = pts
                frame.time_base = Fraction(1, fps)
                pts += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    tmp.replace(out)
    return out
