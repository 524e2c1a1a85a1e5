"""The event-loop RTSP engine's parts without a camera: RTP depacketising, SDP, a camera talking nonsense.

The engine against a real GStreamer camera is in test_ingest.py and test_camera_lifecycle.py
(every RTSP test there runs on both engines). Here a real clip's access units are packetised the
way RFC 6184 cameras do it (single NAL units, STAP-A for the parameter sets, FU-A past the MTU),
and what comes out of the depacketiser must be the same pictures, decodable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest

from fusionhub.media.options import IngestOptions
from fusionhub.media.packets import EncodedPacket
from fusionhub.media.pipeline import IngestStats, PacketPipeline
from fusionhub.media.rtsploop import (
    LoopCameraIngest,
    VideoTrack,
    _Connection,
    _SerialDecode,
    depacketizer,
    lower_thread_priority,
    parse_sdp,
)
from fusionhub.media.source import SourceFailure
from fusionhub.signaling.messages import CameraStatus
from tests.support.rtsp import LoopbackServer, TinyRtspServer, free_port

START = b"\x00\x00\x00\x01"
PT = 96


def split_nals(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B buffer (4- and 3-byte start codes alike)."""
    return [nal for nal in re.split(rb"\x00?\x00\x00\x01", data) if nal]


def packetize(nals: list[bytes], ts: int, seq: int, mtu: int = 300) -> Iterator[tuple[bytes, int]]:
    """RTP packets of one access unit, in order (parameter sets aggregated in a STAP-A), with their seq."""
    payloads: list[bytes] = []
    params: list[bytes] = []
    for nal in [*nals, b""]:
        if nal and nal[0] & 0x1F in (7, 8):
            params.append(nal)
            continue
        if params:
            payloads.append(bytes([0x18]) + b"".join(struct.pack(">H", len(n)) + n for n in params))
            params = []
        if not nal:
            break
        if len(nal) <= mtu:
            payloads.append(nal)
            continue
        head, body = nal[0], nal[1:]
        chunks = [body[i : i + mtu] for i in range(0, len(body), mtu)]
        for i, chunk in enumerate(chunks):
            fu_header = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0) | (head & 0x1F)
            payloads.append(bytes([(head & 0xE0) | 28, fu_header]) + chunk)
    for i, payload in enumerate(payloads):
        marker = 0x80 if i == len(payloads) - 1 else 0
        header = struct.pack(">BBHII", 0x80, marker | PT, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1234)
        yield header + payload, seq
        seq += 1


def rtp_stream(packets: list[EncodedPacket], first_ts: int, *, strip_params: bool = False, mtu: int = 300) -> list[bytes]:
    out: list[bytes] = []
    seq = 65_530  # the sequence number wraps too
    for n, packet in enumerate(packets):
        nals = split_nals(packet.data)
        if strip_params:
            nals = [nal for nal in nals if nal[0] & 0x1F not in (7, 8)]
        sent = list(packetize(nals, first_ts + 3000 * n, seq, mtu))
        out += [rtp for rtp, _ in sent]
        seq = sent[-1][1] + 1
    return out


def run(track: VideoTrack, rtp: list[bytes]) -> list[tuple[bytes, int, bool]]:
    units: list[tuple[bytes, int, bool]] = []
    feed = depacketizer(track, lambda data, ts, key: units.append((data, ts, key)))
    for packet in rtp:
        feed(memoryview(packet))
    return units


def decoded_pictures(units: list[tuple[bytes, int, bool]]) -> int:
    decoder = av.CodecContext.create("h264", "r")
    frames = 0
    for data, _, _ in units:
        frames += len(decoder.decode(av.Packet(data)))  # type: ignore[attr-defined]
    return frames + len(decoder.decode(None))  # type: ignore[attr-defined]


TRACK = VideoTrack("rtsp://127.0.0.1/cam/trackID=0", PT, (), 30.0)


def test_access_units_come_out_as_they_went_in_across_the_timestamp_wrap(h264_packets: list[EncodedPacket]) -> None:
    first_ts = (1 << 32) - 3000 * 10  # the 32-bit RTP clock wraps ten frames in
    rtp = rtp_stream(h264_packets, first_ts)
    assert any(p[12] & 0x1F == 28 for p in rtp) and any(p[12] & 0x1F == 24 for p in rtp)  # FU-A and STAP-A used
    units = run(TRACK, rtp)
    assert [u[0] for u in units] == [START + START.join(split_nals(p.data)) for p in h264_packets]
    assert [u[2] for u in units] == [p.is_keyframe for p in h264_packets]
    assert [u[1] for u in units] == [3000 * n for n in range(len(h264_packets))], "unwrapped, monotonic"
    assert decoded_pictures(units) == len(h264_packets)


def test_keyframes_get_the_sdp_parameter_sets_when_the_camera_sends_none(h264_packets: list[EncodedPacket]) -> None:
    params = tuple(n for n in split_nals(h264_packets[0].data) if n[0] & 0x1F in (7, 8))
    units = run(VideoTrack(TRACK.control, PT, params, None), rtp_stream(h264_packets, 0, strip_params=True))
    keyframes = [u[0] for u in units if u[2]]
    assert len(keyframes) == sum(p.is_keyframe for p in h264_packets) >= 2
    for key in keyframes:
        types = [n[0] & 0x1F for n in split_nals(key)]
        assert types.index(7) < types.index(5) and types.index(8) < types.index(5)
    assert decoded_pictures(units[len(units) // 2 :]) > 0  # a viewer joining at a later keyframe decodes


def test_a_lost_fragment_or_marker_breaks_one_picture_not_the_stream(h264_packets: list[EncodedPacket]) -> None:
    rtp = rtp_stream(h264_packets, 0, mtu=100)
    # a fragment from the middle of the first keyframe's slice
    lost = next(i for i, p in enumerate(rtp) if p[12] & 0x1F == 28 and p[13] == 5)
    damaged = rtp[:lost] + rtp[lost + 1 :]
    last_of_second = next(i for i, p in enumerate(damaged) if p[1] & 0x80 and i > lost + 1)
    no_marker = bytearray(damaged[last_of_second])
    no_marker[1] &= 0x7F  # the end of one picture is not marked: the next timestamp ends it
    damaged[last_of_second] = bytes(no_marker)
    units = run(TRACK, damaged)
    assert len(units) == len(h264_packets)
    sent, got = split_nals(h264_packets[0].data), split_nals(units[0][0])
    assert len(got) == len(sent) - 1 and all(n in sent for n in got), "the broken slice is dropped, not glued"
    assert sum(n[0] & 0x1F == 5 for n in got) == sum(n[0] & 0x1F == 5 for n in sent) - 1
    assert [u[1] for u in units] == [3000 * n for n in range(len(h264_packets))]
    assert units[1:] == run(TRACK, rtp)[1:] == run(TRACK, rtp_stream(h264_packets, 0))[1:]  # the rest intact


def test_a_keyframes_only_stream_gives_its_keyframes_whole_and_nothing_else(h264_packets: list[EncodedPacket]) -> None:
    """A substream nobody views: its other pictures are dropped as their first slice comes, with the
    access unit delimiter a camera may send before each picture, and no fragment of them leaks."""
    aud = b"\x09\xf0"
    with_aud = [EncodedPacket(data=START + aud + p.data, pts=p.pts, is_keyframe=p.is_keyframe) for p in h264_packets]
    rtp = rtp_stream(with_aud, 1000, mtu=100)  # P slices come in FU-A fragments too
    assert any(p[12] & 0x1F == 28 and p[13] & 0x1F == 1 for p in rtp)
    units: list[tuple[bytes, int, bool]] = []
    feed = depacketizer(TRACK, lambda data, ts, key: units.append((data, ts, key)), keyframes_only=True)
    for packet in rtp:
        feed(memoryview(packet))
    everything = run(TRACK, rtp)
    keys = [u for u in everything if u[2]]
    assert len(keys) >= 2 and len(everything) > 3 * len(keys)
    assert units == keys, "every keyframe, whole and at its own timestamp; no other picture"
    assert decoded_pictures(units) == len(keys)


def test_padding_extensions_and_other_payloads_are_handled(h264_packets: list[EncodedPacket]) -> None:
    plain = rtp_stream(h264_packets[:5], 0)
    dressed: list[bytes] = []
    for packet in plain:
        header, payload = bytearray(packet[:12]), packet[12:]
        header[0] |= 0x30  # padding and a header extension
        extension = struct.pack(">HH", 0xBEDE, 1) + b"\x10\xff\x00\x00"
        dressed.append(bytes(header) + extension + payload + b"\x00\x00\x03")
        dressed.append(struct.pack(">BBHII", 0x80, 97, 0, 0, 1) + b"\x65\x00\x01")  # another payload type
    assert run(TRACK, dressed) == run(TRACK, plain)


GSTREAMER_SDP = """v=0
o=- 1188340656180883 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
t=0 0
a=tool:GStreamer
a=type:broadcast
a=control:*
a=range:npt=0-40
m=audio 0 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=control:stream=1
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
a=rtpmap:96 H264/90000
a=framerate:25
a=fmtp:96 packetization-mode=1;profile-level-id=64001f;sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDIPGDGWA=,aOvjyyLA
a=control:stream=0
"""


def _interleaved(channel: int, payload: bytes) -> bytes:
    return b"$" + bytes([channel]) + struct.pack(">H", len(payload)) + payload


@pytest.mark.parametrize("read_size", [1, 7, 1400, 65_536], ids=lambda n: f"reads of {n} B")
async def test_the_connection_reads_any_split_of_the_stream_into_the_same_packets(read_size: int) -> None:
    """Reads of any size: RTP frames and RTSP answers split across reads, frames of up to 64 KiB,
    the other channel's RTCP left out."""
    rtp = [bytes([0x80, PT]) + bytes([n % 251]) * size for n, size in enumerate([10, 1400, 65_531, 3, 40_000, 65_000])]
    body = b"v=0\r\n" + b"a=x:" + b"y" * 30_000 + b"\r\n"
    answer = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    stream = b"".join(
        [_interleaved(0, rtp[0]), _interleaved(1, b"\x80\xc9rtcp"), _interleaved(0, rtp[1]), answer,
         *(_interleaved(0, r) for r in rtp[2:])]
    )
    got: list[bytes] = []
    connection = _Connection(lambda view: got.append(bytes(view)))

    class Wire(asyncio.Transport):
        def write(self, data: bytes | bytearray | memoryview) -> None:
            pass

    connection.connection_made(Wire())
    answered = connection.send("DESCRIBE", "rtsp://127.0.0.1/cam", {})
    for pos in range(0, len(stream), read_size):
        connection.data_received(stream[pos : pos + read_size])
    assert got == rtp
    response = answered.result()
    assert response.status == 200 and response.body == body
    assert not connection.closed.done()
    assert not connection.buf  # nothing left over


def test_sdp_gives_the_h264_track_its_control_url_and_parameter_sets() -> None:
    track = parse_sdp(GSTREAMER_SDP, "rtsp://127.0.0.1:8554/cam/")
    assert track.control == "rtsp://127.0.0.1:8554/cam/stream=0"
    assert track.payload_type == 96 and track.rate == 25.0
    assert [nal[0] & 0x1F for nal in track.parameter_sets] == [7, 8]
    absolute = GSTREAMER_SDP.replace("a=control:stream=0", "a=control:rtsp://10.0.0.9/other/track1")
    assert parse_sdp(absolute, "rtsp://127.0.0.1:8554/cam/").control == "rtsp://10.0.0.9/other/track1"


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        (("H264/90000", "H265/90000"), "unsupported_codec", "codec h265"),
        (("m=video 0 RTP/AVP 96", "m=text 0 RTP/AVP 96"), "no_video", "no video stream"),
    ],
)
def test_sdp_without_an_h264_video_track_says_why(change: tuple[str, str], reason: str, detail: str) -> None:
    with pytest.raises(SourceFailure) as failure:
        parse_sdp(GSTREAMER_SDP.replace(*change), "rtsp://127.0.0.1/cam")
    assert (failure.value.reason, failure.value.detail) == (reason, detail)


def video_only_camera(url: str, statuses: list[CameraStatus], pool: ThreadPoolExecutor, reconnect_s: float) -> LoopCameraIngest:
    """An event-loop camera whose statuses are recorded (packets and samples dropped)."""
    return LoopCameraIngest(
        7,
        url,
        sink=type("Sink", (), {"on_packet": lambda self, p: None})(),
        on_sample=lambda *_: None,
        on_status=statuses.append,
        loop=asyncio.get_running_loop(),
        options=IngestOptions(timeout_s=2.0, reconnect_min_s=reconnect_s, reconnect_max_s=2 * reconnect_s),
        decode_pool=pool,
    )


async def first_offline(url: str) -> CameraStatus:
    """Start an event-loop camera, wait for its first offline status (10 s at most), stop it."""
    statuses: list[CameraStatus] = []
    with ThreadPoolExecutor(1) as pool:
        ingest = video_only_camera(url, statuses, pool, reconnect_s=5.0)
        ingest.start()
        try:
            async with asyncio.timeout(10):
                while not any(s.state == "offline" for s in statuses):
                    await asyncio.sleep(0.02)
        finally:
            await ingest.stop()
    return next(s for s in statuses if s.state == "offline")


async def test_a_camera_talking_nonsense_goes_offline_and_is_tried_again() -> None:
    """A server that answers DESCRIBE with something that is not RTSP: 'unreachable' (as on the threaded engine), then a reconnect."""
    connections = 0

    async def nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()  # until the hub closes
        writer.close()

    server = await asyncio.start_server(nonsense, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    statuses: list[CameraStatus] = []
    with ThreadPoolExecutor(1) as pool:
        ingest = video_only_camera(f"rtsp://127.0.0.1:{port}/cam", statuses, pool, reconnect_s=0.1)
        ingest.start()
        try:
            async with asyncio.timeout(10):
                while connections < 3:
                    await asyncio.sleep(0.02)
        finally:
            await ingest.stop()
            server.close()
            await server.wait_closed()
    assert [(s.state, s.reason) for s in statuses] == [("connecting", None), ("offline", "unreachable"), ("stopped", None)]


async def test_a_redirect_loop_is_given_up_with_a_reason() -> None:
    """A camera that redirects to itself: followed three times, then offline 'unreachable' (no hang)."""
    loop_back = "RTSP/1.0 302 Moved\r\nLocation: rtsp://127.0.0.1:{}/cam"
    async with TinyRtspServer(lambda port: loop_back.format(port)) as camera:
        offline = await first_offline(f"rtsp://127.0.0.1:{camera.port}/cam")
    assert offline.reason == "unreachable"
    assert sum(r.startswith("DESCRIBE") for r in camera.requests) == 4  # the first and three redirects


async def test_a_redirect_to_another_host_does_not_take_the_password_along(caplog: pytest.LogCaptureFixture) -> None:
    """The camera's credentials are for the camera's host (as curl does it): a server on another host
    it redirects to is not sent them, even when it asks for Basic. FFmpeg, under the threaded engine,
    does send them."""
    password = "Sh0uld-Stay-Home"
    caplog.set_level(logging.DEBUG)
    challenge = 'RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="elsewhere"'
    async with TinyRtspServer(lambda _port: challenge) as elsewhere:
        target = f"rtsp://127.0.0.1:{elsewhere.port}/stream"
        async with TinyRtspServer(lambda _port: f"RTSP/1.0 302 Moved\r\nLocation: {target}") as camera:
            # the camera is named "localhost": the same machine, another host name than 127.0.0.1
            offline = await first_offline(f"rtsp://admin:{password}@localhost:{camera.port}/cam")
    assert any(r.startswith("DESCRIBE") for r in elsewhere.requests), "the redirect was followed"
    assert not any("authorization:" in r.lower() for r in elsewhere.requests)
    assert offline.reason == "auth_refused"
    assert password not in caplog.text


async def test_a_stop_that_is_itself_cancelled_lets_the_cancel_through() -> None:
    """The gateway stops a camera from its demand loop, and stops that loop at shutdown: a cancel
    arriving while stop() waits for the camera's task must cancel the caller, not be swallowed
    (a swallowed one hung the gateway's shutdown)."""
    statuses: list[CameraStatus] = []
    with ThreadPoolExecutor(1) as pool:
        ingest = video_only_camera(f"rtsp://127.0.0.1:{free_port()}/cam", statuses, pool, reconnect_s=5.0)
        ingest.start()
        async with asyncio.timeout(10):
            while not any(s.state == "offline" for s in statuses):  # now waiting to reconnect
                await asyncio.sleep(0.02)
        stopping = asyncio.create_task(ingest.stop())
        await asyncio.sleep(0)  # stop() has cancelled the camera's task and waits for it
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
    assert statuses[-1].state == "offline"  # cancelled before it could say "stopped"


def test_a_sample_is_stamped_when_its_keyframe_came_not_when_a_decode_thread_was_free(
    h264_packets: list[EncodedPacket],
) -> None:
    """A busy decode pool delays a sample: its time (the flag's "seen at", the hub's sample age) must not hide that."""
    samples: list[tuple[float, float, np.ndarray]] = []
    pipeline = PacketPipeline(
        7, options=IngestOptions(), stats=IngestStats(),
        on_sample=lambda ts, frame, _thumb: samples.append((ts, time.time(), frame)),
    )
    key = next(p for p in h264_packets if p.is_keyframe)
    busy = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(busy.wait, 5.0)  # every decode thread is taken
        decode = _SerialDecode(pipeline, pool, every_packet=False)
        came = time.time()
        decode.offer(key.data, key.pts, True)
        time.sleep(0.5)
        assert not samples
        busy.set()
    assert len(samples) == 1
    stamped, delivered, frame = samples[0]
    assert frame.ndim == 3 and frame.shape[2] == 3
    assert delivered - came >= 0.5
    assert came <= stamped < came + 0.1  # when it came, not when it was decoded


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="thread priorities are a Linux matter here")
def test_decode_threads_run_below_the_event_loop_and_inference() -> None:
    """The gateway's decode pool runs `media.decode_nice` steps below the process (Linux nice is per thread)."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(1, initializer=lower_thread_priority, initargs=(5,)) as pool:
        lowered = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    with ThreadPoolExecutor(1, initializer=lower_thread_priority, initargs=(0,)) as pool:
        unchanged = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert lowered == min(19, base + 5)
    assert unchanged == base
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the caller's own thread is untouched


def test_keyframes_replaced_while_the_decode_threads_are_busy_are_reported_and_the_newest_is_decoded(
    h264_packets: list[EncodedPacket],
) -> None:
    samples: list[float] = []
    lost: list[int] = []
    pipeline = PacketPipeline(
        7, options=IngestOptions(), stats=IngestStats(), on_sample=lambda ts, _frame, _thumb: samples.append(ts)
    )
    keys = [p for p in h264_packets if p.is_keyframe]
    busy = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(busy.wait, 5.0)
        decode = _SerialDecode(pipeline, pool, every_packet=False, on_superseded=lambda: lost.append(7))
        for n in range(3):  # three keyframes (the clip's first, again and again) while no thread is free
            decode.offer(keys[0].data, keys[0].pts + n * 180_000, True)
            newest = time.time()
        busy.set()
    assert lost == [7, 7]  # the first two were replaced, each reported once
    assert len(samples) == 1 and samples[0] >= newest - 0.05  # the newest one was decoded
    assert decode.superseded == 2


# ---- read batching --------------------------------------------------------------------------

VIDEO_ONLY_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=paced\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\na=framerate:30\r\na=control:track0\r\n"
)


class PacedCamera(LoopbackServer):
    """A scripted camera on loopback: answers DESCRIBE, SETUP and PLAY, then writes `frames` (lists
    of RTP packets, one list per picture) at 30 fps, then `last` after `pause_s`, then says nothing
    more (the connection stays open, as a camera whose encoder froze)."""

    def __init__(self, frames: list[list[bytes]], last: list[bytes], pause_s: float) -> None:
        super().__init__()
        self.frames, self.last, self.pause_s = frames, last, pause_s
        self.sent = 0  # pictures written

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError), contextlib.closing(writer):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                cseq = next(line for line in head.split("\r\n") if line.lower().startswith("cseq:"))
                if head.startswith("DESCRIBE"):
                    body = VIDEO_ONLY_SDP.encode()
                    writer.write(b"RTSP/1.0 200 OK\r\n%s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
                                 % (cseq.encode(), len(body), body))
                elif head.startswith("SETUP"):
                    writer.write(f"RTSP/1.0 200 OK\r\n{cseq}\r\nSession: 42;timeout=60\r\n"
                                 "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n".encode())
                else:
                    writer.write(f"RTSP/1.0 200 OK\r\n{cseq}\r\nSession: 42\r\n\r\n".encode())
                await writer.drain()
                if head.startswith("PLAY"):
                    break
            start = time.monotonic()
            for n, frame in enumerate(self.frames):
                await asyncio.sleep(max(0.0, start + n / 30 - time.monotonic()))
                writer.write(b"".join(_interleaved(0, rtp) for rtp in frame))
                self.sent += 1
            await asyncio.sleep(self.pause_s)
            writer.write(b"".join(_interleaved(0, rtp) for rtp in self.last))
            self.sent += 1
            await reader.read()  # until the hub hangs up


async def test_a_camera_nobody_watches_is_read_in_batches_and_its_last_pictures_are_not_held_back(
    h264_packets: list[EncodedPacket],
) -> None:
    """Read batching (read_batch_s) on a camera nobody watches: the hub wakes for several pictures
    at once; when the camera then goes quiet with less than a batch waiting in the socket, those
    last pictures still reach the hub (the ring, the analytics) well before the camera would time
    out, instead of waiting for bytes that never come."""
    clip = h264_packets * 2  # 4 s at 30 fps, then one more picture after a pause
    rtp = rtp_stream([*clip, min(h264_packets[1:], key=lambda p: len(p.data))], 90_000)
    frames: list[list[bytes]] = []
    for packet in rtp:  # regroup per picture: the marker bit ends one
        if not frames or frames[-1] and frames[-1][-1][1] & 0x80:
            frames.append([])
        frames[-1].append(packet)
    assert len(frames) == len(clip) + 1
    got: list[EncodedPacket] = []
    statuses: list[CameraStatus] = []
    async with PacedCamera(frames[:-1], frames[-1], pause_s=0.2) as camera:
        with ThreadPoolExecutor(1) as pool:
            ingest = LoopCameraIngest(
                7,
                f"rtsp://127.0.0.1:{camera.port}/cam",
                sink=type("Sink", (), {"on_packet": lambda self, p: got.append(p)})(),
                on_sample=lambda *_: None,
                on_status=statuses.append,
                loop=asyncio.get_running_loop(),
                options=IngestOptions(timeout_s=5.0),
                decode_pool=pool,
                read_batch_s=0.3,
            )
            ingest.start()
            try:
                batched = 0
                async with asyncio.timeout(10):
                    while camera.sent < len(frames):
                        if ingest._connection is not None:
                            batched = max(batched, ingest._connection.read_at_least)
                        await asyncio.sleep(0.02)
                quiet_since = time.monotonic()
                async with asyncio.timeout(4):  # the camera times out after 5 s of silence
                    while len(got) < len(frames):
                        await asyncio.sleep(0.02)
                held_back_s = time.monotonic() - quiet_since
                assert ingest._connection is not None and ingest._connection.read_at_least == 1
                reads = ingest.stats.reads
            finally:
                await ingest.stop()
    print(f"batched reads: up to {batched} B a read; {reads} reads for {len(got)} pictures; "
          f"the last one held back {held_back_s:.2f} s")
    assert batched > 1000, "reads were never batched"
    assert reads < len(got) * 0.7  # unbatched, it is one read a picture at least
    assert [p.pts for p in got] == sorted(p.pts for p in got)
    assert [(s.state, s.reason) for s in statuses[:2]] == [("connecting", None), ("online", None)]
    assert not any(s.state == "offline" for s in statuses)
