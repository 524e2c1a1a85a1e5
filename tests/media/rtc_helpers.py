"""Helpers for the relay/WHEP tests: camera-like H.264 clips and a real-time packet player."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from fusionhub.media.packets import EncodedPacket, PacketSink


def make_h264_clip(
    path: Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    seconds: float = 2.0,
    profile: str = "high",
    gop_s: float = 1.0,
    x264_extra: str = "",
) -> Path:
    """An MP4 like a camera's: libx264, no B-frames, a keyframe every `gop_s`, a moving bar.

    `x264_extra`: more x264 parameters (e.g. "slices=4"), colon-separated."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "preset": "veryfast",
            "profile": profile,
            "x264-params": f"keyint={round(fps * gop_s)}:min-keyint={round(fps * gop_s)}:scenecut=0:bframes=0"
            + (f":{x264_extra}" if x264_extra else ""),
        }
        for i in range(round(fps * seconds)):
            img = np.full((height, width, 3), 40, np.uint8)
            x = (i * 7) % max(1, width - 24)
            img[:, x : x + 24] = (255, 200, 0)
            img[height // 3 : height // 3 + 16, :] = (0, (i * 5) % 256, 255)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def demux_annexb(path: Path) -> list[EncodedPacket]:
    """The clip's access units as a camera would deliver them: Annex-B, SPS/PPS on keyframes, 90 kHz pts."""
    out: list[EncodedPacket] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in container.demux(stream):
            for annexb in bsf.filter(packet if packet.size else None):
                assert annexb.pts is not None
                pts = int(annexb.pts * stream.time_base * 90_000)
                out.append(EncodedPacket(bytes(annexb), pts, bool(annexb.is_keyframe)))
    assert out and out[0].is_keyframe
    return out


class PacketPlayer:
    """Feeds a list of packets to a sink in real time, looping, with a monotonic 90 kHz clock."""

    def __init__(self, packets: list[EncodedPacket], sink: PacketSink, *, fps: int = 30) -> None:
        self._packets = packets
        self._sink = sink
        self._fps = fps
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="packet-player")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = 90_000 // self._fps
        while True:
            packet = self._packets[self.sent % len(self._packets)]
            self._sink.on_packet(replace(packet, pts=self.sent * step))
            self.sent += 1
            await asyncio.sleep(max(0.0, start + self.sent / self._fps - loop.time()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
