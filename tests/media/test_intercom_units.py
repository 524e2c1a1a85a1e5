"""Intercom pieces without a network: the room timeline, listener queues, Ogg remux, protocol, config."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from pydantic import ValidationError

from bench.ptt_client import tone_cycle
from fusionhub.media.intercom.config import IntercomConfig
from fusionhub.media.intercom.forward import FRAME, ForwardTrack, RoomClock, make_packet
from fusionhub.media.intercom.recorder import BurstRecorder, Speaker, opus_head, opus_samples, write_ogg_opus
from fusionhub.media.intercom.room import level_from
from fusionhub.signaling.errors import ProtocolError
from fusionhub.signaling.intercom import FloorMsg, parse_client
from fusionhub.signaling.messages import PttBurst


def test_room_clock_follows_a_talker_and_continues_across_talkers() -> None:
    clock = RoomClock()
    assert clock.stamp("a", 1_000, now=10.0) == 0
    assert clock.stamp("a", 1_000 + FRAME, now=10.02) == FRAME
    assert clock.stamp("a", 1_000 + 3 * FRAME, now=10.06) == 3 * FRAME  # a lost packet stays a gap
    assert clock.stamp("a", 1_000 + 2 * FRAME, now=10.07) is None  # late: dropped, never backwards
    assert clock.stamp("a", 1_000 + 3 * FRAME, now=10.08) is None  # repeated
    assert clock.late == 2
    # another talker with an unrelated RTP origin, 1.5 s later: placed by the wall clock
    pts = clock.stamp("b", 4_000_000_000, now=11.56)
    assert pts == 3 * FRAME + 72_000
    # its timestamps wrap around 2^32 and the room timeline keeps rising
    assert clock.stamp("b", (4_000_000_000 + FRAME) % (1 << 32), now=11.58) == pts + FRAME
    wrapped = (4_000_000_000 + 300_000_000) % (1 << 32)
    assert clock.stamp("b", wrapped, now=11.60) == pts + FRAME + round(0.02 * 48_000)  # a clock jump: wall time


def test_room_clock_new_burst_of_the_same_talker_uses_wall_time() -> None:
    clock = RoomClock()
    clock.stamp("a", 0, now=0.0)
    clock.new_burst()
    assert clock.stamp("a", 123_456, now=2.0) == 96_000


async def test_forward_track_keeps_the_newest_and_counts_drops() -> None:
    track = ForwardTrack(4)
    packets = [make_packet(bytes([i]), i * FRAME) for i in range(6)]
    for packet in packets:
        track.offer(packet)
    assert track.dropped == 2
    got = [await track.recv() for _ in range(4)]
    assert [bytes(p) for p in got] == [bytes([i]) for i in range(2, 6)]
    waiter = asyncio.create_task(track.recv())
    await asyncio.sleep(0.01)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiter
    track.offer(packets[0])  # after stop: ignored
    assert track.packets_sent == 4


def test_burst_remux_plays_back_with_its_gaps(tmp_path: Path) -> None:
    cycle = tone_cycle()
    packets = [(i * FRAME, cycle[i % len(cycle)]) for i in range(50)]
    packets += [(50 * FRAME + 24_000 + i * FRAME, cycle[i % len(cycle)]) for i in range(25)]  # after a 0.5 s gap
    duration, size, sha = write_ogg_opus(tmp_path / "b" / "x.ogg", [(pts + 5_000_000, p) for pts, p in packets])
    assert 1.99 < duration <= 2.0  # less the pre-skip the player drops
    assert size == (tmp_path / "b" / "x.ogg").stat().st_size and len(sha) == 64
    assert not list((tmp_path / "b").glob("*.part"))
    with av.open(str(tmp_path / "b" / "x.ogg")) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 1
        frames = list(container.decode(stream))
    # the 0.5 s gap plays as 25 silent frames: the file lasts as long as the burst
    assert len(frames) == 100
    assert sum(f.samples for f in frames) / 48_000 == pytest.approx(duration)
    gap = frames[60].to_ndarray()
    assert abs(gap).max() < 1e-3 and abs(frames[2].to_ndarray()).max() > 0.1
    with pytest.raises(ValueError):
        write_ogg_opus(tmp_path / "empty.ogg", [])


async def test_a_burst_lasts_as_its_hold_when_the_wall_clock_steps(tmp_path: Path) -> None:
    """A VM's clock set at resume (or NTP) steps time.time(): the burst's start and end still
    differ by how long the hold lasted, so its times agree with its audio."""
    now = {"wall": 1_800_000_000.0, "mono": 100.0}
    reported: list[PttBurst] = []

    async def report(burst: PttBurst) -> None:
        reported.append(burst)

    recorder = BurstRecorder("case:1", case_id=1, data_dir=tmp_path, subdir="ptt", max_packets=500,
                             on_burst=report, wall=lambda: now["wall"], clock=lambda: now["mono"])
    cycle = tone_cycle()
    recorder.start(Speaker("s1", 7, "Field Zhao"))
    for i in range(150):  # 3 s of audio, over 3 s of hold
        recorder.add("s1", i * FRAME, cycle[i % len(cycle)])
    now["wall"] += 6.3 + 3.0  # the wall clock was stepped 6.3 s forward meanwhile
    now["mono"] += 3.0
    recorder.finish("s1", "released")
    await recorder.close()
    (burst,) = reported
    assert burst.started_at == 1_800_000_000.0
    assert burst.ended_at - burst.started_at == pytest.approx(3.0)
    assert abs(burst.duration_s - 3.0) < 0.05


def test_opus_packet_durations_from_the_toc() -> None:
    assert opus_samples(tone_cycle()[0]) == FRAME  # libopus, 20 ms
    assert opus_samples(bytes([0xF8, 0xFF, 0xFE])) == 960  # CELT 20 ms, one frame
    assert opus_samples(bytes([(1 << 3) | 1, 0])) == 1920  # SILK 20 ms, two frames
    assert opus_samples(bytes([(16 << 3) | 3, 4])) == 480  # CELT 2.5 ms, four frames
    assert opus_samples(b"") == 0


def test_opus_head_is_rfc7845() -> None:
    head = opus_head(2)
    assert head[:8] == b"OpusHead" and len(head) == 19 and head[8] == 1 and head[9] == 2


def test_level_from_header_extension_or_size() -> None:
    loud, quiet, bare = RtpPacket(payload=b"x" * 40), RtpPacket(payload=b"x" * 40), RtpPacket(payload=b"x" * 160)
    loud.extensions.audio_level = (True, 6)
    quiet.extensions.audio_level = (False, 127)
    assert level_from(loud) == pytest.approx(0.9)
    assert level_from(quiet) == 0.0
    assert level_from(bare) == 1.0  # no extension: a large Opus packet is loud speech


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "malformed"),
        ("[1]", "malformed"),
        ('{"type": "granted"}', "unknown_type"),
        ('{"type": "request", "emergency": "yes"}', "malformed"),
        ('{"type": "request", "pad": "' + "x" * 2000 + '"}', "too_large"),
    ],
)
def test_floor_protocol_refuses_bad_messages(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_client(text)
    assert err.value.code == code


def test_floor_protocol_reads_requests() -> None:
    assert parse_client('{"type": "request", "emergency": true}') == (FloorMsg.REQUEST, True)
    assert parse_client(b'{"type": "release"}') == (FloorMsg.RELEASE, False)


def test_intercom_config_bounds() -> None:
    config = IntercomConfig()
    assert config.priority_of("commander") > config.priority_of("duty") > config.priority_of("field")
    assert config.priority_of("nobody") == 0
    for bad in ({"priorities": {"field": 300}}, {"recordings_dir": "../out"}, {"floor": {"grace": 1}}, {"x": 1}):
        with pytest.raises(ValidationError):
            IntercomConfig.model_validate(bad)
