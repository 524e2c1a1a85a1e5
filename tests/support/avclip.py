"""Test clips with sound: H.264 video plus an AAC tone, made with PyAV (energy is measurable)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

TONE_HZ = 440.0
TONE_LEVEL = 0.3  # of full scale


def tone(start: int, count: int, rate: int) -> np.ndarray:
    """`count` samples of the test tone from sample index `start`, int16 mono."""
    t = np.arange(start, start + count) / rate
    return (TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * t) * 32767).astype(np.int16)


def make_av_clip(
    path: Path, *, seconds: float = 10.0, fps: int = 10, width: int = 320, height: int = 240, sample_rate: int = 16_000,
    gop_s: int = 1,
) -> Path:
    """An MP4 with H.264 constrained baseline (`gop_s` GOP, no B-frames) and a mono AAC 440 Hz tone."""
    frames = round(seconds * fps)
    samples = round(seconds * sample_rate)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {
            "preset": "veryfast",
            "profile": "baseline",
            "x264-params": f"keyint={fps * gop_s}:min-keyint={fps * gop_s}:scenecut=0:bframes=0",
        }
        audio = container.add_stream("aac", rate=sample_rate)
        audio.layout = "mono"
        chunk = audio.codec_context.frame_size or 1024
        vi = ai = 0
        while vi < frames or ai < samples:
            if ai < samples and (vi >= frames or ai / sample_rate <= vi / fps):
                n = min(chunk, samples - ai)
                frame = av.AudioFrame.from_ndarray(tone(ai, n, sample_rate).reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = sample_rate, ai, Fraction(1, sample_rate)
                container.mux(audio.encode(frame))
                ai += n
            else:
                img = np.full((height, width, 3), 40, np.uint8)
                x = (vi * 7) % max(1, width - 24)
                img[:, x : x + 24] = (255, 200, 0)
                vframe = av.VideoFrame.from_ndarray(img, format="rgb24")
                vframe.pts, vframe.time_base = vi, Fraction(1, fps)
                container.mux(video.encode(vframe))
                vi += 1
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path
