"""OpusTranscoder: one source's audio converted to Opus ONCE, shared by every listener.

Browsers cannot play AAC over WebRTC, and aiortc sends no G.722. A source whose audio is AAC (or G.711 for a listener
that does not offer it) gets one transcoder, started when the first listener needs it and
stopped after `idle_s` without listeners; all its listeners share its Opus packets through an
AudioRelay. Decoding and encoding run in a worker thread, one batch at a time, never on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction

import av
from av.audio.codeccontext import AudioCodecContext

from fusionhub.media.audio import AudioRelay, AudioSubscription
from fusionhub.media.packets import AUDIO_DECODERS, AudioFormat, AudioPacket
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

OPUS_RATE = 48_000
OPUS_FORMAT = AudioFormat(codec="opus", sample_rate=OPUS_RATE, channels=2)
_BATCH = 16  # packets converted per trip to the worker thread at most


def audio_decoder(fmt: AudioFormat) -> AudioCodecContext:
    """A decoder for a source's audio (its codec, real sample rate, channels and AAC config)."""
    decoder = av.CodecContext.create(AUDIO_DECODERS[fmt.codec], "r")
    assert isinstance(decoder, AudioCodecContext)
    decoder.sample_rate = fmt.decoded_rate
    decoder.layout = "stereo" if fmt.channels == 2 else "mono"
    if fmt.extradata:
        decoder.extradata = fmt.extradata
    return decoder


class _Codecs:
    """Decoder, resampler and Opus encoder; used only from the worker thread, one call at a time."""

    def __init__(self, fmt: AudioFormat, bitrate: int) -> None:
        self.format = fmt
        self.decoder = audio_decoder(fmt)
        self.resampler = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE, frame_size=960)
        encoder = av.CodecContext.create("libopus", "w")
        assert isinstance(encoder, AudioCodecContext)
        encoder.bit_rate = bitrate
        encoder.format = "s16"
        encoder.layout = "stereo"
        encoder.sample_rate = OPUS_RATE
        encoder.time_base = Fraction(1, OPUS_RATE)
        encoder.options = {"application": "audio"}
        self.encoder = encoder
        self.first_pts: int | None = None


class OpusTranscoder:
    """Subscribes to a source's AudioRelay and feeds `self.relay` with Opus (48 kHz stereo)."""

    def __init__(self, source: AudioRelay, name: str, *, bitrate: int = 64_000, idle_s: float = 10.0) -> None:
        self.name = name
        self.relay = AudioRelay(f"{name} opus")
        self._source = source
        self._bitrate = bitrate
        self._idle_s = idle_s
        self._codecs: _Codecs | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_pts = 0
        self.starts = 0  # times an encoder was started: one per listening period, never per listener
        self.packets_in = 0
        self.packets_out = 0
        self.errors = 0

    @property
    def running(self) -> bool:
        """True while the conversion task runs (it ends by itself after idle_s without listeners)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start converting (idempotent while running)."""
        if self.running:
            return
        self.starts += 1
        self._codecs = None
        self._task = asyncio.create_task(self._run(self._source.subscribe()), name=f"opus-{self.name}")

    async def stop(self) -> None:
        """Stop converting and close the Opus relay's listeners (safe to call twice)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.relay.close()

    async def _run(self, sub: AudioSubscription) -> None:
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        try:
            while True:
                try:
                    async with asyncio.timeout(1.0):
                        first = await sub.get()
                except TimeoutError:
                    first = None
                    if sub.closed:
                        return
                if self.relay.subscriber_count:
                    idle_since = loop.time()
                elif loop.time() - idle_since > self._idle_s:
                    log.debug("%s: no listener for %.0f s; Opus transcoder stops", self.name, self._idle_s)
                    return
                if first is None:
                    if sub.closed:
                        return
                    continue
                batch = [first]
                while len(batch) < _BATCH and len(sub):
                    item = await sub.get()
                    if item is None:
                        break
                    batch.append(item)
                self.packets_in += len(batch)
                for packet in await asyncio.to_thread(self._convert, batch):
                    self.packets_out += 1
                    self.relay.on_audio(packet)
        finally:
            sub.close()

    def _convert(self, batch: list[AudioPacket]) -> list[AudioPacket]:
        """Decode, resample and encode a batch (worker thread)."""
        out: list[AudioPacket] = []
        for item in batch:
            codecs = self._codecs
            if codecs is None or codecs.format != item.format:
                codecs = self._codecs = _Codecs(item.format, self._bitrate)
            try:
                frames = codecs.decoder.decode(av.Packet(item.data))
                for frame in frames:
                    frame.pts = None  # the resampler restamps; source gaps are not worth a glitch
                    for chunk in codecs.resampler.resample(frame):
                        for encoded in codecs.encoder.encode(chunk):
                            out.append(self._opus_packet(codecs, encoded))
            except av.error.FFmpegError as exc:
                self.errors += 1
                if self.errors == 1:
                    log.warning("%s: audio frame did not convert to Opus: %s", self.name, exc)
                else:
                    log.debug("%s: audio conversion error #%d: %s", self.name, self.errors, exc)
        return out

    def _opus_packet(self, codecs: _Codecs, encoded: av.Packet) -> AudioPacket:
        pts = encoded.pts if encoded.pts is not None else self._next_pts
        if codecs.first_pts is None:
            codecs.first_pts = pts - self._next_pts  # continue the clock across a format change
        pts -= codecs.first_pts
        self._next_pts = pts + 960
        return AudioPacket(data=bytes(encoded), pts=pts, format=OPUS_FORMAT)

    def stats(self) -> dict[str, object]:
        """Counters for monitoring."""
        return {
            "running": self.running,
            "starts": self.starts,
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "listeners": self.relay.subscriber_count,
            "errors": self.errors,
        }
