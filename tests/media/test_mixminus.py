"""Mix-minus with real Opus (PyAV/libopus): listeners share one encode, talkers do not hear themselves."""

from __future__ import annotations

import av
import numpy as np

from fusionhub.media.mixminus import FRAME, RATE, MixMinus, _encoder


def _tone_packets(freq: float, frames: int) -> list[bytes]:
    enc = _encoder(32_000)
    t = np.arange(frames * FRAME) / RATE
    pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    out = []
    for i in range(frames):
        frame = av.AudioFrame.from_ndarray(pcm[i * FRAME : (i + 1) * FRAME].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i * FRAME
        out.append(b"".join(bytes(p) for p in enc.encode(frame)))
    return out


def _decode(packets: list[bytes]) -> np.ndarray:
    dec = av.CodecContext.create("opus", "r")
    chunks = []
    for data in packets:
        for frame in dec.decode(av.Packet(data)):  # type: ignore[attr-defined]
            chunks.append(frame.to_ndarray()[0].astype(np.float64))
    return np.concatenate(chunks)


def _level(pcm: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    bins = np.fft.rfftfreq(len(pcm), 1 / RATE)
    band = (bins > freq - 20) & (bins < freq + 20)
    return float(spectrum[band].max() / spectrum.max())


def test_listeners_share_one_encode_and_talkers_hear_everyone_but_themselves() -> None:
    a, b = _tone_packets(440, 60), _tone_packets(1000, 60)
    mixer = MixMinus()
    shared, to_a, to_b = [], [], []
    for pa, pb in zip(a, b, strict=True):
        if pa:
            mixer.push(1, pa)
        if pb:
            mixer.push(2, pb)
        out = mixer.tick()
        if out.shared:
            shared.append(out.shared)
        if 1 in out.per_talker:
            to_a.append(out.per_talker[1])
        if 2 in out.per_talker:
            to_b.append(out.per_talker[2])
    assert len(shared) > 50 and len(to_a) > 50 and len(to_b) > 50
    # two talkers: one shared encoder for any number of listeners, plus one per talker
    assert mixer.encoders_created == 3 and mixer.encoders == 3
    mix, minus_a, minus_b = (_decode(p)[FRAME * 5 :] for p in (shared, to_a, to_b))
    assert _level(mix, 440) > 0.5 and _level(mix, 1000) > 0.5  # listeners hear both
    assert _level(minus_a, 1000) > 0.9 and _level(minus_a, 440) < 0.05  # A hears B, not A
    assert _level(minus_b, 440) > 0.9 and _level(minus_b, 1000) < 0.05

    # A stops talking: after the timeout A's encoder goes; B alone is heard by everyone
    for pb in _tone_packets(1000, 40):
        if pb:
            mixer.push(2, pb)
        out = mixer.tick()
    assert out.talkers == [2] and mixer.encoders == 2


def test_a_flooding_talker_is_bounded() -> None:
    mixer = MixMinus(max_queue=3)
    for packet in _tone_packets(440, 20):
        if packet:
            mixer.push(7, packet)
    assert mixer.dropped >= 15  # kept at most 3 frames; the rest were dropped, not queued
    assert mixer.tick().talkers == [7]
