"""An aiortc WHEP viewer for the fan-out tests: decodes, timestamps every frame, can send PLI."""

from __future__ import annotations

import asyncio
import contextlib
import time

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class DecodingViewer:
    """A real aiortc peer (ICE, DTLS, SRTP, jitter buffer, H.264 decoder) on 127.0.0.1."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frame_times: list[float] = []  # time.monotonic() of every decoded frame
        self.size: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def frames(self) -> int:
        return len(self.frame_times)

    async def offer(self) -> str:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == "video/H264"])
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.frame_times.append(time.monotonic())
                self.size = (frame.width, frame.height)

    def fps(self, t0: float, t1: float) -> float:
        """Decoded frames per second between two time.monotonic() instants."""
        return sum(1 for t in self.frame_times if t0 <= t <= t1) / (t1 - t0)

    async def wait_frames(self, n: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while self.frames < n:
                await asyncio.sleep(0.02)

    async def send_pli(self, media_ssrc: int) -> None:
        """Ask the sender for a keyframe, as a browser does after a loss it cannot repair."""
        receiver = self.pc.getReceivers()[0]
        await receiver._send_rtcp_pli(media_ssrc)

    async def close(self) -> None:
        await self.pc.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
