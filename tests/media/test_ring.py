"""PacketRing: keyframe-aligned windows, bounded by age and by bytes."""

from __future__ import annotations

from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket
from fusionhub.media.ring import PacketRing

PCMA = AudioFormat("pcma", 8000, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(ring: PacketRing, clock: Clock, seconds: float, *, fps: int = 10, gop: int = 10, size: int = 100) -> None:
    for i in range(round(seconds * fps)):
        ring.on_packet(EncodedPacket(b"x" * size, pts=i * 9000, is_keyframe=i % gop == 0))
        ring.on_audio(AudioPacket(b"a" * 10, pts=i * 800, format=PCMA))
        clock.now += 1 / fps


def test_window_starts_at_a_keyframe_at_or_before_the_start() -> None:
    clock = Clock()
    ring = PacketRing(seconds=30, max_bytes=10**6, clock=clock)
    feed(ring, clock, 5)
    entries = ring.window(1002.5, 1003.5)
    first = entries[0]
    assert isinstance(first.packet, EncodedPacket) and first.packet.is_keyframe
    assert abs(first.at - 1002.0) < 1e-6  # the keyframe of the GOP holding 1002.5
    assert max(e.at for e in entries) <= 1003.5
    assert any(isinstance(e.packet, AudioPacket) for e in entries)


def test_age_bound_keeps_one_gop_before_the_cutoff() -> None:
    clock = Clock()
    ring = PacketRing(seconds=2, max_bytes=10**6, clock=clock)
    feed(ring, clock, 10)
    assert 2.0 <= ring.span_s < 3.0  # 2 s plus at most one GOP so the window start decodes
    assert ring.dropped_gops == 0


def test_byte_bound_drops_the_oldest_gop_first() -> None:
    clock = Clock()
    ring = PacketRing(seconds=600, max_bytes=3_000, clock=clock)
    feed(ring, clock, 10)
    assert ring.bytes <= 3_000
    assert ring.dropped_gops > 0
    entries = ring.window(0, clock.now)
    assert isinstance(entries[0].packet, EncodedPacket) and entries[0].packet.is_keyframe


def test_a_source_without_keyframes_is_not_buffered_without_limit() -> None:
    clock = Clock()
    ring = PacketRing(seconds=600, max_bytes=5_000, clock=clock)
    feed(ring, clock, 10, gop=10_000)  # one keyframe, then never another
    assert ring.bytes == 0 and ring.dropped_gops == 1  # given up, waiting for the next keyframe
    ring.on_packet(EncodedPacket(b"k" * 100, pts=0, is_keyframe=True))
    assert ring.bytes == 100
