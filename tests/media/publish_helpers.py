"""An aiortc WHIP publisher: a moving test picture and a 440 Hz tone, encoded by aiortc itself."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from tests.support.avclip import tone


class PatternTrack(VideoStreamTrack):
    """320x240 frames at 30 fps with a moving bar."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.full((240, 320, 3), 60, np.uint8)
        x = (self.count * 5) % 296
        img[:, x : x + 24] = (255, 255, 0)
        self.count += 1
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone, 20 ms frames at 48 kHz mono, paced in real time."""

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.time()
        due = self._start + self._samples / 48_000
        await asyncio.sleep(max(0.0, due - time.time()))
        frame = av.AudioFrame.from_ndarray(tone(self._samples, 960, 48_000).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts, frame.time_base = self._samples, fractions.Fraction(1, 48_000)
        self._samples += 960
        return frame


class Publisher:
    """Offers sendonly video (+ audio); the hub's answer decides the codecs (H.264, Opus)."""

    def __init__(self, *, audio: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver(PatternTrack(), direction="sendonly")
        if audio:
            self.pc.addTransceiver(ToneTrack(), direction="sendonly")

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
