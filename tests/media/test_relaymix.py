"""RelayMix: two browser parties' Opus mixed for a conference terminal, in the terminal's codec,
encoded once however many listen. Real Opus in, real PCMU / PCMA / G.722 / Opus out, decoded
again and checked for both voices (tones) by their spectrum."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import numpy as np
import pytest
from av.audio.codeccontext import AudioCodecContext

from fusionhub.media.audio import AudioRelay
from fusionhub.media.packets import AUDIO_DECODERS, AudioFormat, AudioPacket
from fusionhub.media.relaymix import RelayMix, mixable

BROWSER_OPUS = AudioFormat(codec="opus", sample_rate=48_000, channels=2)
OUTPUTS = {
    "pcmu": AudioFormat(codec="pcmu", sample_rate=8000, channels=1),
    "pcma": AudioFormat(codec="pcma", sample_rate=8000, channels=1),
    "g722": AudioFormat(codec="g722", sample_rate=8000, channels=1),  # RTP clock 8 kHz, audio 16 kHz
    "opus": BROWSER_OPUS,
}


def opus_tone(freq: float, seconds: float) -> list[bytes]:
    """A tone as 20 ms Opus packets, as a browser sends its microphone."""
    enc = av.CodecContext.create("libopus", "w")
    assert isinstance(enc, AudioCodecContext)
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48_000, "stereo", "s16", 64_000
    enc.time_base = Fraction(1, 48_000)
    enc.open()
    out: list[bytes] = []
    n = int(seconds * 50)
    for i in range(n + 5):
        t = (np.arange(960) + i * 960) / 48_000
        mono = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16) if i < n else np.zeros(960, np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48_000, i * 960
        out += [bytes(p) for p in enc.encode(frame)]
    return out[:n]


def decode(fmt: AudioFormat, packets: list[bytes]) -> tuple[np.ndarray, int]:
    dec = av.CodecContext.create(AUDIO_DECODERS[fmt.codec], "r")
    assert isinstance(dec, AudioCodecContext)
    dec.sample_rate, dec.layout = fmt.decoded_rate, "stereo" if fmt.channels == 2 else "mono"
    mono = av.AudioResampler(format="s16", layout="mono", rate=fmt.decoded_rate)  # whatever the decoder gives
    chunks = []
    for data in packets:
        for frame in dec.decode(av.Packet(data)):
            frame.pts = None
            chunks += [f.to_ndarray().reshape(-1).astype(np.float64) for f in mono.resample(frame)]
    return np.concatenate(chunks), fmt.decoded_rate


def level_at(pcm: np.ndarray, rate: int, freq: float) -> float:
    """Share of the signal's energy within 30 Hz of `freq`."""
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) ** 2
    bins = np.fft.rfftfreq(len(pcm), 1 / rate)
    return float(spectrum[np.abs(bins - freq) < 30].sum() / spectrum.sum())


@pytest.mark.parametrize("codec", sorted(OUTPUTS))
async def test_two_voices_reach_a_terminal_in_its_codec_through_one_encoder(codec: str) -> None:
    out_fmt = OUTPUTS[codec]
    commander, field = AudioRelay("commander"), AudioRelay("field")
    mix = RelayMix("call-1 terminal-1", out_fmt)
    mix.set_inputs({"commander": commander, "field": field})
    got: list[list[AudioPacket]] = [[], [], []]

    async def listen(into: list[AudioPacket]) -> None:
        sub = mix.relay.subscribe()
        while (p := await sub.get()) is not None:
            into.append(p)

    readers = [asyncio.create_task(listen(g)) for g in got]
    mix.start()
    low, high = opus_tone(440, 1.0), opus_tone(1200, 1.0)
    try:
        for i, (a, b) in enumerate(zip(low, high)):
            commander.on_audio(AudioPacket(a, i * 960, BROWSER_OPUS))
            field.on_audio(AudioPacket(b, i * 960, BROWSER_OPUS))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
    finally:
        await mix.stop()
        await asyncio.gather(*readers)
    assert len(got[0]) >= 40 and [len(g) for g in got] == [len(got[0])] * 3  # every listener, the same packets
    assert all(p.format == out_fmt for p in got[0])
    step = int(out_fmt.sample_rate * 0.02)
    assert [p.pts for p in got[0]] == [i * step for i in range(len(got[0]))]  # one 20 ms packet a tick, no gaps
    assert mix.encoders_created == 1 and mix.errors == 0
    pcm, rate = decode(out_fmt, [p.data for p in got[0]])
    body = pcm[rate // 10 : -rate // 10]
    both, one = level_at(body, rate, 440), level_at(body, rate, 1200)
    assert both > 0.2 and one > 0.2, (both, one)  # each voice is in the mix
    assert mix.stats()["inputs"] == [] and commander.subscriber_count == 0  # stop() let the inputs go


async def test_an_input_that_falls_silent_drops_out_and_inputs_can_change() -> None:
    commander, field = AudioRelay("commander"), AudioRelay("field")
    mix = RelayMix("m", OUTPUTS["pcmu"])
    mix.set_inputs({"commander": commander})
    sub = mix.relay.subscribe()
    mix.start()
    try:
        for i, a in enumerate(opus_tone(440, 0.5)):
            commander.on_audio(AudioPacket(a, i * 960, BROWSER_OPUS))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        first = len(sub)
        assert first >= 15
        await asyncio.sleep(0.3)  # nobody talks: nothing is sent (no stream of encoded silence)
        assert len(sub) == first
        mix.set_inputs({"field": field})  # the commander left the mix, the field member joined
        assert mix.inputs == ["field"] and commander.subscriber_count == 0 and field.subscriber_count == 1
        for i, b in enumerate(opus_tone(1200, 0.5)):
            field.on_audio(AudioPacket(b, i * 960, BROWSER_OPUS))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert len(sub) >= first + 15
    finally:
        await mix.stop()
        await mix.stop()  # safe twice


def test_only_codecs_it_can_encode() -> None:
    assert all(mixable(f) for f in OUTPUTS.values())
    assert not mixable(AudioFormat(codec="aac", sample_rate=48_000, channels=2)) and not mixable(None)
    with pytest.raises(ValueError):
        RelayMix("x", AudioFormat(codec="aac", sample_rate=48_000, channels=2))
