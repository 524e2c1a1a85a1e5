"""RelayMix: several sources' audio mixed into ONE stream in one codec, encoded once for its listeners.

A conference terminal in a video call takes one audio stream, but two people talk to it (the
commander and the field member, each publishing Opus from a browser). Browsers mix what they
receive themselves, so only such single-stream listeners need the hub to mix: the inputs are
decoded (one decoder each), summed on a 20 ms clock, and the sum is encoded ONCE in the
listener's codec (PCMU, PCMA, G.722 or Opus) into `relay`; however many listeners subscribe,
there is one encoder. Nobody hears themselves: a party's own voice is never an input of the mix
it listens to (the terminal's own audio is not mixed into what is sent to it).

Bounded everywhere: each input keeps at most `max_buffer_ms` of decoded audio (the oldest is
dropped and counted), an input that sends nothing simply drops out of the sum, and a tick with no
audio from anybody sends nothing. Decoding, mixing and encoding run in a worker thread, one tick
at a time, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext

from fusionhub.media.audio import AudioRelay, AudioSubscription
from fusionhub.media.packets import AUDIO_DECODERS, AudioFormat, AudioPacket
from fusionhub.media.transcode import audio_decoder
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MIX_RATE = 48_000
TICK_S = 0.02
TICK_SAMPLES = int(MIX_RATE * TICK_S)  # 960
_ENCODERS = {"pcmu": "pcm_mulaw", "pcma": "pcm_alaw", "g722": "g722", "opus": "libopus"}


def mixable(fmt: AudioFormat | None) -> bool:
    """Whether the mix can be encoded in (or decoded from) this format."""
    return fmt is not None and fmt.codec in _ENCODERS and fmt.codec in AUDIO_DECODERS


class _Input:
    """One source of the mix: its subscription, decoder, and decoded 48 kHz mono samples."""

    def __init__(self, sub: AudioSubscription) -> None:
        self.sub = sub
        self.format: AudioFormat | None = None
        self.decoder: AudioCodecContext | None = None
        self.resampler: av.AudioResampler | None = None
        self.pcm = np.zeros(0, np.int32)

    def decode(self, packet: AudioPacket) -> np.ndarray:
        """Samples of one packet at 48 kHz mono (worker thread)."""
        if self.decoder is None or packet.format != self.format:
            self.format = packet.format
            self.decoder = audio_decoder(packet.format)
            self.resampler = av.AudioResampler(format="s16", layout="mono", rate=MIX_RATE)
        assert self.resampler is not None
        chunks = []
        for frame in self.decoder.decode(av.Packet(packet.data)):
            frame.pts = None
            chunks += [f.to_ndarray().reshape(-1) for f in self.resampler.resample(frame)]
        return np.concatenate(chunks).astype(np.int32) if chunks else np.zeros(0, np.int32)


class RelayMix:
    """Mixes the inputs set with `set_inputs` into `relay` in `out` format. `stop()` is safe twice."""

    def __init__(self, name: str, out: AudioFormat, *, max_buffer_ms: int = 200, bitrate: int = 32_000) -> None:
        if not mixable(out):
            raise ValueError(f"cannot mix into {out.codec}")
        self.name = name
        self.format = out
        self.relay = AudioRelay(f"{name} mix")
        self.relay.format = out  # known before the first packet: a SIP sender checks it up front
        self._inputs: dict[str, _Input] = {}
        self._max_samples = MIX_RATE * max_buffer_ms // 1000
        self._bitrate = bitrate
        self._encoder: AudioCodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._pts = 0
        self._task: asyncio.Task[None] | None = None
        self.encoders_created = 0
        self.ticks = 0
        self.packets_out = 0
        self.dropped_samples = 0
        self.errors = 0

    @property
    def inputs(self) -> list[str]:
        """The names of the sources mixed now."""
        return sorted(self._inputs)

    def set_inputs(self, relays: dict[str, AudioRelay]) -> None:
        """Mix exactly these sources from now on (new ones subscribed, gone ones let go)."""
        for key in [k for k in self._inputs if k not in relays]:
            self._inputs.pop(key).sub.close()
        for key, relay in relays.items():
            if key not in self._inputs:
                self._inputs[key] = _Input(relay.subscribe())

    def start(self) -> None:
        """Start the 20 ms clock (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mix-{self.name}")

    async def stop(self) -> None:
        """Stop mixing, let the inputs go and close the output's listeners."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.set_inputs({})
        self.relay.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += TICK_S
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                due = loop.time()  # fell far behind (a busy machine): restart the clock, no burst
            batch: list[tuple[_Input, list[AudioPacket]]] = []
            for item in list(self._inputs.values()):
                packets = []
                while len(item.sub):
                    packet = await item.sub.get()
                    if packet is not None:
                        packets.append(packet)
                batch.append((item, packets))
            try:
                out = await asyncio.to_thread(self._tick, batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a packet that does not decode costs a tick, not the mix
                self.errors += 1
                level = logging.WARNING if self.errors == 1 else logging.DEBUG
                log.log(level, "%s: mix tick failed: %s", self.name, exc)
                continue
            for packet in out:
                self.packets_out += 1
                self.relay.on_audio(packet)

    def _tick(self, batch: list[tuple[_Input, list[AudioPacket]]]) -> list[AudioPacket]:
        """Decode what arrived, mix one 20 ms frame of every input that has one, encode it (thread)."""
        self.ticks += 1
        frames = []
        for item, packets in batch:
            for packet in packets:
                item.pcm = np.concatenate([item.pcm, item.decode(packet)])
            if len(item.pcm) > self._max_samples:  # bounded: a source ahead of the clock loses its oldest
                self.dropped_samples += len(item.pcm) - self._max_samples
                item.pcm = item.pcm[-self._max_samples :]
            if len(item.pcm) >= TICK_SAMPLES:
                frames.append(item.pcm[:TICK_SAMPLES])
                item.pcm = item.pcm[TICK_SAMPLES:]
        if not frames:
            return []
        mixed = np.clip(np.sum(frames, axis=0), -32768, 32767).astype(np.int16)
        return self._encode(mixed)

    def _encode(self, pcm: np.ndarray) -> list[AudioPacket]:
        if self._encoder is None:
            encoder = av.CodecContext.create(_ENCODERS[self.format.codec], "w")
            assert isinstance(encoder, AudioCodecContext)
            rate = self.format.decoded_rate
            encoder.sample_rate = rate
            encoder.layout = "stereo" if self.format.channels == 2 else "mono"
            encoder.format = "s16"
            if self.format.codec == "opus":
                encoder.bit_rate = self._bitrate
                encoder.options = {"application": "voip", "frame_duration": "20"}
            encoder.open()
            self._encoder = encoder
            self._resampler = av.AudioResampler(
                format="s16", layout=encoder.layout.name, rate=rate, frame_size=int(rate * TICK_S)
            )
            self.encoders_created += 1
        assert self._resampler is not None
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = MIX_RATE
        out: list[AudioPacket] = []
        step = int(self.format.sample_rate * TICK_S)  # on the output's RTP clock (G.722: 8 kHz)
        for chunk in self._resampler.resample(frame):
            chunk.pts = None
            for encoded in self._encoder.encode(chunk):
                out.append(AudioPacket(data=bytes(encoded), pts=self._pts, format=self.format))
                self._pts += step
        return out

    def stats(self) -> dict[str, object]:
        """Counters for monitoring: one encoder, whatever the number of listeners."""
        return {
            "format": self.format.codec,
            "inputs": self.inputs,
            "listeners": self.relay.subscriber_count,
            "encoders": self.encoders_created,
            "ticks": self.ticks,
            "packets_out": self.packets_out,
            "dropped_samples": self.dropped_samples,
            "errors": self.errors,
        }
