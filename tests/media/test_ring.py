"""PacketRing: keyframe-aligned windows, bounded by age and by bytes."""

from __future__ import annotations

import gc

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


def test_a_window_gives_back_every_packet_as_it_came() -> None:
    clock = Clock()
    ring = PacketRing(seconds=30, max_bytes=10**6, clock=clock)
    aac = AudioFormat("aac", 48_000, 2, b"\x11\x90")
    sent: list[tuple[float, EncodedPacket | AudioPacket]] = []
    for i in range(30):
        video = EncodedPacket(bytes([i]) * (50 + i), pts=i * 3600, is_keyframe=i % 10 == 0, codec="h264")
        audio = AudioPacket(bytes([i]) * 7, pts=i * 1920, format=aac)
        for packet in (video, audio):
            (ring.on_packet if isinstance(packet, EncodedPacket) else ring.on_audio)(packet)  # type: ignore[operator]
            sent.append((clock.now, packet))
        clock.now += 0.04
    got = ring.window(0, clock.now)
    assert [(e.at, e.packet) for e in got] == sent
    formats = {id(e.packet.format) for e in got if isinstance(e.packet, AudioPacket)}
    assert len(formats) == 1  # one format object, as a source has


def test_what_the_ring_holds_costs_the_garbage_collector_nothing() -> None:
    # the rings hold every camera's last 30 s: had each packet stayed an object the collector tracks,
    # each full collection would walk them all, with the event loop stopped meanwhile
    clock = Clock()
    ring = PacketRing(seconds=60, max_bytes=10**8, clock=clock)
    feed(ring, clock, 1)
    gc.collect()
    before = len(gc.get_objects())
    feed(ring, clock, 50, fps=25, gop=50)  # 1,250 video and 1,250 audio packets, 25 GOPs
    gc.collect()
    held = len(ring.window(0, clock.now))
    assert held > 2_400
    assert len(gc.get_objects()) - before < 100  # the GOPs and their lists, not the packets
