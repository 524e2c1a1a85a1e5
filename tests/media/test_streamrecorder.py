"""Call recordings: a source's relayed H.264 + Opus remuxed into an MP4 (no re-encode), hashed, reported."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import av

from bench.ptt_client import tone_cycle
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket
from fusionhub.media.recording import CallRecordingConfig
from fusionhub.media.relay import PacketRelay
from fusionhub.media.streamrecorder import StreamRecorders, StreamRecording

OPUS = AudioFormat(codec="opus", sample_rate=48_000, channels=2)


def _outputs() -> SourceOutputs:
    outputs = SourceOutputs("test", PacketRelay("test", queue_packets=300), None)
    outputs.audio.format = OPUS  # as a WHIP publisher sets it from the SDP
    return outputs


async def _play(outputs: SourceOutputs, video: list[EncodedPacket]) -> None:
    """2 s of video (30 fps) and Opus (20 ms), interleaved as they would arrive."""
    audio = tone_cycle() * 4
    a = 0
    for packet in video:
        outputs.on_packet(packet)
        while a < len(audio) and a * 960 <= packet.pts * 48_000 // 90_000:
            outputs.on_audio(AudioPacket(data=audio[a], pts=a * 960, format=OPUS))
            a += 1
        await asyncio.sleep(0)


async def test_a_source_is_recorded_as_relayed_into_an_mp4_with_its_hash(tmp_path: Path, h264_packets: list[EncodedPacket]) -> None:
    done: list[StreamRecording] = []

    async def on_done(rec: StreamRecording) -> None:
        done.append(rec)

    recorders = StreamRecorders(tmp_path, CallRecordingConfig(flush_interval_s=0.05))
    outputs = _outputs()
    recorder = recorders.start("call-x-1", outputs, on_done)
    assert recorder is not None
    assert recorders.start("call-x-1", outputs, on_done) is None  # one recorder per key
    await _play(outputs, h264_packets)
    await outputs.close()  # the publisher went: the file is finished and reported
    async with asyncio.timeout(10):
        while not done:
            await asyncio.sleep(0.05)
    rec = done[0]
    path = tmp_path / rec.path
    assert rec.path.startswith("recordings/calls/") and rec.path.endswith(".mp4") and not rec.truncated
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.info.sha256 and path.stat().st_size == rec.info.size
    span = (h264_packets[-1].pts - h264_packets[0].pts) / 90_000
    assert rec.info.has_audio and abs((rec.info.end - rec.info.start) - span) < 0.05
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "opus"
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        assert sum(1 for p in container.demux(audio=0) if p.size) >= 90  # ~2 s of 20 ms packets
    assert frames == len(h264_packets)  # every picture, as received
    await recorders.stop()
    assert len(done) == 1


async def test_stop_finishes_live_recordings_and_nothing_without_a_keyframe(
    tmp_path: Path, h264_packets: list[EncodedPacket]
) -> None:
    done: list[StreamRecording] = []

    async def on_done(rec: StreamRecording) -> None:
        done.append(rec)

    recorders = StreamRecorders(tmp_path, CallRecordingConfig(flush_interval_s=0.05))
    live, blind = _outputs(), _outputs()
    recorders.start("live", live, on_done)
    recorders.start("blind", blind, on_done)
    await _play(live, h264_packets)
    await _play(blind, [p for p in h264_packets if not p.is_keyframe])  # nothing decodable ever came
    await recorders.stop()  # the hub stops: the live one is finished, the blind one leaves no file
    assert len(done) == 1 and (tmp_path / done[0].path).is_file()
    assert [p.name for p in (tmp_path / "recordings/calls").rglob("*") if p.is_file()] == [Path(done[0].path).name]
    assert recorders.start("again", _outputs(), on_done) is None  # stopped: no new recordings
    await recorders.stop()
    await live.close()
    await blind.close()


async def test_recording_can_be_turned_off(tmp_path: Path) -> None:
    async def on_done(rec: StreamRecording) -> None:
        raise AssertionError("nothing is recorded")

    recorders = StreamRecorders(tmp_path, CallRecordingConfig(enabled=False))
    assert recorders.start("x", _outputs(), on_done) is None
    await recorders.stop()
