"""An aiortc WHEP viewer that decodes video AND audio and measures the audio's energy."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


@dataclass
class AvViewer:
    """Offers recvonly video + audio (every codec aiortc has); counts frames, sums audio energy."""

    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
    video_frames: int = 0
    audio_frames: int = 0
    audio_square_sum: float = 0.0
    audio_samples: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def offer(self, *, audio: bool = True) -> str:
        self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", lambda track: self.tasks.append(asyncio.create_task(self._read(track))))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    x = frame.to_ndarray().astype(np.float64) / 32768.0
                    self.audio_frames += 1
                    self.audio_square_sum += float((x**2).sum())
                    self.audio_samples += x.size
                else:
                    self.video_frames += 1

    @property
    def audio_rms(self) -> float:
        """Root mean square of every decoded sample (full scale = 1.0)."""
        return (self.audio_square_sum / self.audio_samples) ** 0.5 if self.audio_samples else 0.0

    async def wait(self, *, video: int = 1, audio: int = 0, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while self.video_frames < video or self.audio_frames < audio:
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
