"""Mix-minus for calls with a few talkers: decode the talkers, mix, ONE shared encode for listeners.

With more than two parties somebody must mix. An encoder per listener (what aiortc does when
each listener gets its own mixed track) costs a full Opus encode per person; here the cost
follows the number of TALKERS, which is small in a review call or a team call:
- each talker's Opus is decoded (one decoder per talker);
- the mix of all talkers is encoded ONCE and the same packet goes to every listener who is not
  talking (however many they are);
- each talker gets the mix minus their own voice (so they do not hear themselves), encoded once
  per talker: with T talkers the hub runs T + 1 encoders, never one per listener.
`tick()` produces one 20 ms frame for everybody; the owner calls it on a 20 ms clock from a worker
thread (PyAV decoding and encoding block). A talker silent for `talker_timeout_frames` frames
stops being a talker (its encoder is dropped). Input is bounded: each talker keeps at most
`max_queue` decoded frames, the oldest is dropped (a talker sending too fast cannot grow memory).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np

from fusionhub.media.errors import MediaError

log = logging.getLogger(__name__)

RATE = 48_000
FRAME = 960  # 20 ms at 48 kHz


class TooManyTalkers(MediaError):
    """More simultaneous talkers than the mixer takes (the newest is not mixed)."""


def _encoder(bitrate: int) -> av.AudioCodecContext:
    ctx = av.CodecContext.create("libopus", "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = RATE
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.bit_rate = bitrate
    ctx.options = {"application": "voip", "frame_duration": "20"}
    ctx.open()
    return ctx


def _encode(ctx: av.AudioCodecContext, pcm: np.ndarray, pts: int) -> bytes:
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    frame.pts = pts
    return b"".join(bytes(p) for p in ctx.encode(frame))


@dataclass
class _Talker:
    decoder: av.AudioCodecContext
    encoder: av.AudioCodecContext | None = None
    frames: deque[np.ndarray] = field(default_factory=deque)
    silent: int = 0


@dataclass(frozen=True)
class MixOutput:
    """One 20 ms tick: `shared` for every listener not talking, `per_talker` for each talker."""

    shared: bytes | None
    per_talker: dict[int, bytes]
    talkers: list[int]


class MixMinus:
    """The mixer of one call. Thread-safe: `push` from the loop, `tick` from a worker thread."""

    def __init__(self, *, max_talkers: int = 4, max_queue: int = 5, bitrate: int = 32_000, talker_timeout_frames: int = 25) -> None:
        self._max_talkers = max_talkers
        self._max_queue = max_queue
        self._bitrate = bitrate
        self._timeout = talker_timeout_frames
        self._talkers: dict[int, _Talker] = {}
        self._shared: av.AudioCodecContext | None = None
        self._lock = threading.Lock()
        self._pts = 0
        self.encoders_created = 0
        self.dropped = 0

    def push(self, talker_id: int, opus: bytes) -> None:
        """One Opus packet from a talker (decoded here: cheap, and keeps the queue as PCM)."""
        with self._lock:
            talker = self._talkers.get(talker_id)
            if talker is None:
                if len(self._talkers) >= self._max_talkers:
                    raise TooManyTalkers(f"at most {self._max_talkers} talkers are mixed")
                talker = _Talker(decoder=av.CodecContext.create("opus", "r"))  # type: ignore[arg-type]
                self._talkers[talker_id] = talker
            for frame in talker.decoder.decode(av.Packet(opus)):
                pcm = frame.to_ndarray()
                if pcm.dtype != np.int16:  # fltp from the decoder: to s16, first channel
                    pcm = np.clip(pcm * 32767.0, -32768, 32767).astype(np.int16)
                mono = pcm[0] if pcm.ndim == 2 else pcm
                if len(talker.frames) >= self._max_queue:
                    talker.frames.popleft()
                    self.dropped += 1
                talker.frames.append(mono[:FRAME].astype(np.int32))

    def tick(self) -> MixOutput:
        """Mix one frame: the shared packet and each talker's mix-minus packet (blocking: PyAV)."""
        with self._lock:
            own: dict[int, np.ndarray] = {}
            for tid, talker in list(self._talkers.items()):
                if talker.frames:
                    pcm = talker.frames.popleft()
                    own[tid] = np.pad(pcm, (0, FRAME - len(pcm))) if len(pcm) < FRAME else pcm
                    talker.silent = 0
                else:
                    talker.silent += 1
                    if talker.silent > self._timeout:
                        del self._talkers[tid]  # not a talker any more: its encoder goes with it
            pts, self._pts = self._pts, self._pts + FRAME
            if not own:
                return MixOutput(None, {}, [])
            total = np.sum(list(own.values()), axis=0)
            if self._shared is None:
                self._shared = self._new_encoder()
            shared = _encode(self._shared, np.clip(total, -32768, 32767).astype(np.int16), pts)
            per_talker: dict[int, bytes] = {}
            for tid in own:
                talker = self._talkers[tid]
                if talker.encoder is None:
                    talker.encoder = self._new_encoder()
                minus = np.clip(total - own[tid], -32768, 32767).astype(np.int16)
                per_talker[tid] = _encode(talker.encoder, minus, pts)
            return MixOutput(shared, per_talker, sorted(own))

    def _new_encoder(self) -> av.AudioCodecContext:
        self.encoders_created += 1
        return _encoder(self._bitrate)

    @property
    def encoders(self) -> int:
        """Encoders alive now: the shared one and one per current talker that spoke."""
        with self._lock:
            return int(self._shared is not None) + sum(t.encoder is not None for t in self._talkers.values())
