"""The event-loop RTSP engine: every camera read by an asyncio protocol on the hub's loop, no thread each.

The thread engine (ingest.py) gives each camera a thread that blocks in FFmpeg's RTSP client.
On a small box with many cameras those threads wake for every packet and contend for the GIL:
bench/ingest_engines.py measures 133 to 154 µs of hub CPU per frame for them at 100 to 200
cameras, and 57 to 62 µs for this engine (every frame delivered by both):

- RTSP 1.0 over TCP with RTP interleaved on the connection (what the thread engine asks FFmpeg
  for too), Basic and Digest authentication, keep-alives, TEARDOWN on stop; DESCRIBE redirects
  followed (three at most), the password sent on only to the camera's own host;
- the SDP's first video track, H.264 only; RTP depacketised per RFC 6184 (single NAL units,
  STAP-A, FU-A) into Annex-B access units; keyframes carry SPS/PPS (in-band ones when the camera
  sends them, else the SDP's sprop-parameter-sets), as the thread engine's packets do;
- the same health states, reasons, backoff and log policy (health.py), the same pts clock
  (PacketPipeline), the same sampler: keyframes (or every frame in rate mode) are decoded in a
  thread pool the gateway shares among cameras, one task at a time per camera, the latest
  keyframe winning when the pool is behind.

It does not carry a camera's audio (only the video track is set up): given `on_handover`, a
camera whose SDP offers audio is handed back to the gateway at DESCRIBE, which reads it with the
thread engine (that carries audio); so is a camera whose sessions end twice in a row before any
picture (a protocol quirk of that camera, which FFmpeg's client may know). Nor does it read
rtsps:// (the gateway gives those to the thread engine). Packets reach the sink on the loop
directly: no hand-off.

Read batching (`read_batch_s`): most of this engine's cost per frame is waking up for it (the
selector, the transport's recv, the protocol call), not parsing it. A camera nobody consumes live
(analytics samples it, the ring keeps its history) has its socket's SO_RCVLOWAT raised to about
`read_batch_s` of its measured bitrate, so the loop wakes once per several frames and reads them
together. The moment a viewer (or recorder, or call) subscribes, reads go back to one per packet
as it comes. A stream that slows below its estimate cannot strand data: the batch is sized each
watch tick (at most 1 s) from the lower of the last two seconds' bitrate, so a slower second
shrinks it and a silent one sets it to read at once; and a connection silent for longer than
3 x read_batch_s reads at once from the next tick on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

import numpy as np

from fusionhub.signaling.messages import CameraStatus
from fusionhub.tasks import cancel_and_wait

from .annexb import IDR, NON_IDR, PPS, SPS, START
from .health import SourceHealth, State
from .options import IngestOptions
from .packets import PacketSink
from .pipeline import IngestStats, PacketPipeline
from .sampler import Thumbnailer
from .source import SampleCallback, SourceFailure, StatusCallback
from .urls import redactor, strip_credentials, validate_camera_url

__all__ = ["LoopCameraIngest", "VideoTrack", "depacketizer", "parse_sdp"]

log = logging.getLogger(__name__)

STAP_A, FU_A = 24, 28
_RTP_HEAD = struct.Struct("!BBHI").unpack_from  # first byte, marker and payload type, sequence, timestamp
_MAX_MESSAGE = 64 * 1024  # an RTSP response head or body larger than this is not a camera talking
_MAX_BUFFER = 8 * 1024 * 1024  # unparsed bytes held per connection at most
_DEFAULT_SESSION_TIMEOUT_S = 60  # RFC 2326 12.37, when the camera does not say
_RATE_MODE_QUEUE = 250  # packets waiting for the decoder in rate mode (10 s at 25 fps) before a reset
_DRAIN_BATCH = 8  # packets one pool task decodes before it yields the thread to another camera
_HANDOVER_AFTER = 2  # sessions in a row ending before any picture, then the gateway reads it with FFmpeg
_MAX_REDIRECTS = 3  # DESCRIBE redirects (3xx with a Location) followed per session
_REDIRECTS = (301, 302, 303, 305, 307, 308)
_MAX_READ_BATCH = 64 * 1024  # bytes a batched read waits for at most (beyond it, little more is saved)
_SO_RCVLOWAT: int | None = getattr(socket, "SO_RCVLOWAT", None)


def decode_pool_size() -> int:
    """Threads of the gateway's shared decode pool."""
    return max(2, min(4, os.cpu_count() or 1))


def lower_thread_priority(steps: int) -> None:
    """Run the calling thread `steps` nice levels below the process (Linux, where nice is per thread).

    The decode pool's initializer: what it decodes can wait, and the latest keyframe wins when it
    does, whereas camera reading and inference must not."""
    if steps <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except OSError as exc:  # a sandbox that forbids it: decoding runs at the usual priority
        log.warning("cannot lower the decode threads' priority: %s", exc)


# ---- SDP and RTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoTrack:
    """What the SDP says of the camera's H.264 track."""

    control: str  # absolute URL to SETUP
    payload_type: int
    parameter_sets: tuple[bytes, ...]  # SPS/PPS NAL units from sprop-parameter-sets (no start codes)
    rate: float | None  # a=framerate, when given


def _control_url(base: str, control: str | None) -> str:
    if not control or control == "*":
        return base
    if control.lower().startswith(("rtsp://", "rtsps://")):
        return control
    return base.rstrip("/") + "/" + control.lstrip("/")


def parse_sdp(sdp: str, base: str) -> VideoTrack:
    """The first video track of a DESCRIBE answer; SourceFailure no_video or unsupported_codec."""
    session_control: str | None = None
    media: list[list[str]] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        elif line.startswith("a=control:"):
            session_control = line[len("a=control:") :].strip()
    base = _control_url(base, session_control)
    for section in media:
        fields = section[0][2:].split()
        if not fields or fields[0] != "video" or len(fields) < 4:
            continue
        codecs: dict[int, str] = {}
        fmtp: dict[int, str] = {}
        control: str | None = None
        rate: float | None = None
        for line in section[1:]:
            key, _, value = line.partition(":")
            if key == "a=rtpmap":
                pt, _, encoding = value.partition(" ")
                with contextlib.suppress(ValueError):
                    codecs[int(pt)] = encoding.split("/")[0].strip().lower()
            elif key == "a=fmtp":
                pt, _, params = value.partition(" ")
                with contextlib.suppress(ValueError):
                    fmtp[int(pt)] = params
            elif key == "a=control":
                control = value.strip()
            elif key == "a=framerate":
                with contextlib.suppress(ValueError):
                    rate = float(value)
        payloads = [int(p) for p in fields[3:] if p.isdigit()]
        h264 = [pt for pt in payloads if codecs.get(pt) == "h264"]
        if not h264:
            named = [codecs.get(pt, f"payload {pt}") for pt in payloads]
            raise SourceFailure("unsupported_codec", f"codec {named[0] if named else 'unknown'}")
        chosen = h264[0]
        sets: list[bytes] = []
        for param in fmtp.get(chosen, "").split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "sprop-parameter-sets":
                for item in value.split(","):
                    with contextlib.suppress(ValueError):
                        nal = base64.b64decode(item.strip() + "=" * (-len(item.strip()) % 4), validate=True)
                        if nal and nal[0] & 0x1F in (SPS, PPS):
                            sets.append(nal)
        return VideoTrack(_control_url(base, control), chosen, tuple(sets), rate)
    raise SourceFailure("no_video", "no video stream")


def sdp_has_audio(sdp: str) -> bool:
    """Whether a DESCRIBE answer offers an audio stream."""
    return any(line.strip().startswith("m=audio ") for line in sdp.splitlines())


class _Redirected(Exception):
    """A DESCRIBE answered 3xx: the stream is at `location`."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True)
class _Target:
    """Where a session connects and what it sends there (a redirect may point elsewhere)."""

    host: str
    port: int
    url: str  # the request URL, without credentials
    credentials: _Credentials | None


class _HandOver(Exception):
    """This engine should not read the camera (it has audio, say): the gateway reads it another way."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


OnAccessUnit = Callable[[bytes, int, bool], None]  # Annex-B data, unwrapped RTP timestamp, keyframe


def depacketizer(
    track: VideoTrack, on_access_unit: OnAccessUnit, *, keyframes_only: bool = False
) -> Callable[[memoryview], None]:
    """A function taking one RTP packet (a view, not kept) and calling `on_access_unit` per picture.

    `keyframes_only`: pictures made of non-IDR slices (24 of 25 at 25 fps with a 1 s GOP) are
    dropped as their first slice comes, with whatever of them was gathered, and the rest of their
    packets are skipped without a copy: for a stream nobody views, whose keyframes alone are decoded.

    A closure rather than a class: it runs for every RTP packet of every camera, and local
    variable access is the cheapest Python has."""
    params: dict[int, bytes] = {nal[0] & 0x1F: nal for nal in track.parameter_sets}
    nals: list[bytes] = []
    fu: list[bytes] | None = None
    current: int | None = None  # RTP timestamp of the access unit being gathered
    last_seq: int | None = None
    last_ts: int | None = None
    unwrapped = 0
    payload_type = track.payload_type
    dropping: int | None = None  # keyframes_only: RTP timestamp of the picture being skipped

    def flush() -> None:
        nonlocal nals, last_ts, unwrapped
        units, nals = nals, []
        ts = current
        if not units or ts is None:
            return
        key = False
        types = 0
        for nal in units:
            kind = nal[0] & 0x1F
            types |= 1 << kind
            if kind == IDR:
                key = True
            elif kind == SPS or kind == PPS:
                params[kind] = nal  # the camera's latest, for keyframes that come without them
        if key and not types & (1 << SPS) and SPS in params and PPS in params:
            units = [params[SPS], params[PPS], *units]
        elif key and not types & (1 << PPS) and PPS in params:
            units = [params[PPS], *units]
        if last_ts is not None:
            step = (ts - last_ts) & 0xFFFFFFFF
            unwrapped += step - (1 << 32) if step >= 1 << 31 else step  # jitter may step back
        last_ts = ts
        on_access_unit(START + START.join(units), unwrapped, key)

    def on_rtp(packet: memoryview) -> None:
        nonlocal fu, current, last_seq, dropping
        size = len(packet)
        if size < 13:
            return  # no RTP header and payload
        first, second, seq, ts = _RTP_HEAD(packet)
        if first & 0xC0 != 0x80 or second & 0x7F != payload_type:
            return  # not RTP version 2, or another payload (a camera may interleave several)
        offset, end = 12, size
        if first & 0x3F:  # CSRCs, a header extension, padding: rare in cameras' streams
            offset += 4 * (first & 0x0F)
            if first & 0x10:
                if size < offset + 4:
                    return
                offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
            if first & 0x20:
                end -= packet[size - 1]
            if offset >= end:
                return
        if last_seq is not None and seq != (last_seq + 1) & 0xFFFF:
            fu = None  # a packet was lost: the fragment being gathered is broken
        last_seq = seq
        if ts != current:
            if current is not None and nals:
                flush()  # the previous picture's last packet (with the marker) never came
            current = ts
        head = packet[offset]
        kind = head & 0x1F
        if keyframes_only:
            if ts == dropping:
                kind = 0  # the rest of a skipped picture
            elif (packet[offset + 1] & 0x1F if kind == FU_A and offset + 1 < end else kind) == NON_IDR:
                dropping, fu, kind = ts, None, 0
                del nals[:]  # its delimiter or SEI, if any came first
        if kind == FU_A:
            if offset + 2 < end:
                fu_header = packet[offset + 1]
                if fu_header & 0x80:
                    fu = [bytes(((head & 0xE0) | (fu_header & 0x1F),)), bytes(packet[offset + 2 : end])]
                elif fu is not None:
                    fu.append(bytes(packet[offset + 2 : end]))
                if fu_header & 0x40 and fu is not None:
                    nals.append(b"".join(fu))
                    fu = None
        elif kind < STAP_A:
            if kind:
                nals.append(bytes(packet[offset:end]))
        elif kind == STAP_A:
            pos = offset + 1
            while pos + 2 <= end:
                length = (packet[pos] << 8) | packet[pos + 1]
                if not length or pos + 2 + length > end:
                    break
                nals.append(bytes(packet[pos + 2 : pos + 2 + length]))
                pos += 2 + length
        # other types (STAP-B, MTAP, FU-B) are not used by cameras in packetization-mode 0 or 1
        if second & 0x80:  # marker: the access unit is complete
            flush()
            current = None

    return on_rtp


# ---- the RTSP connection ----------------------------------------------------------------------


@dataclass(frozen=True)
class RtspResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with "\n"
    body: bytes


class _Connection(asyncio.Protocol):
    """One RTSP connection: requests and their answers, and the interleaved RTP of one channel."""

    def __init__(self, on_rtp: Callable[[memoryview], None]) -> None:
        self.on_rtp = on_rtp
        self.rtp_channel = 0
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: dict[int, asyncio.Future[RtspResponse]] = {}
        self.cseq = 0
        self.last_rx = time.monotonic()
        self.received = 0  # bytes
        self.reads = 0
        self.read_at_least = 1  # the socket's SO_RCVLOWAT
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(f"connection lost: {exc}" if exc else "the camera closed the connection")

    def close(self, why: str, *, flush: bool = False) -> None:
        """End the connection: answers still awaited fail; `flush` sends what was written first."""
        if not self.closed.done():
            self.closed.set_result(why)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError(why))
        self.pending.clear()
        if self.transport is not None:
            if flush:
                self.transport.close()
            else:
                self.transport.abort()

    def wake_at(self, nbytes: int) -> None:
        """Have the loop read this connection only once `nbytes` wait in its socket (1: at once).
        Where the platform refuses (no SO_RCVLOWAT), it stays at 1."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None or _SO_RCVLOWAT is None or nbytes == self.read_at_least:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVLOWAT, nbytes)
        except OSError as exc:
            log.debug("SO_RCVLOWAT %d refused: %s", nbytes, exc)
            return
        self.read_at_least = nbytes

    def send(self, method: str, url: str, headers: dict[str, str]) -> asyncio.Future[RtspResponse]:
        """Write a request; the future is its answer (ConnectionError if the connection goes first)."""
        future: asyncio.Future[RtspResponse] = asyncio.get_running_loop().create_future()
        if self.closed.done() or self.transport is None:
            future.set_exception(ConnectionError(self.closed.result() if self.closed.done() else "not connected"))
            return future
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: FusionHub"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.pending[self.cseq] = future
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return future

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        self.received += len(data)
        self.reads += 1
        buf = self.buf
        buf += data
        pos, n = 0, len(buf)
        failure = None
        view = memoryview(buf)
        try:
            while pos < n:
                if buf[pos] == 0x24:  # '$': an interleaved frame
                    if n - pos < 4:
                        break
                    end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                    if end > n:
                        break
                    if buf[pos + 1] == self.rtp_channel:
                        self.on_rtp(view[pos + 4 : end])
                    pos = end
                else:
                    used = self._message(pos)
                    if used < 0:
                        break
                    pos = used
        except Exception as exc:  # a bug or a camera sending nonsense: this session ends, logged
            failure = "".join(traceback.format_exception_only(exc)).strip()
            if not isinstance(exc, ValueError):
                log.error("RTSP reader failed: %s", "".join(traceback.format_exception(exc)))
        finally:
            view.release()
        del buf[:pos]
        if failure is None and len(buf) > _MAX_BUFFER:
            failure = f"{len(buf)} bytes that are neither RTSP nor RTP"
        if failure is not None:
            self.close(failure)

    def _message(self, pos: int) -> int:
        """Parse an RTSP message at `pos`; its end, or -1 until it is complete. ValueError if garbage."""
        buf = self.buf
        head_end = buf.find(b"\r\n\r\n", pos, pos + _MAX_MESSAGE)
        if head_end < 0:
            if len(buf) - pos > _MAX_MESSAGE:
                raise ValueError("an RTSP message head longer than 64 KiB")
            return -1
        lines = bytes(buf[pos:head_end]).decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                headers[key] = f"{headers[key]}\n{value.strip()}" if key in headers else value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if not 0 <= length <= _MAX_MESSAGE:
            raise ValueError(f"an RTSP body of {length} bytes")
        end = head_end + 4 + length
        if end > len(buf):
            return -1
        first = lines[0].split(" ", 2)
        if first[0] == "RTSP/1.0" and len(first) >= 2 and first[1].isdigit():
            response = RtspResponse(
                int(first[1]), first[2] if len(first) > 2 else "", headers, bytes(buf[head_end + 4 : end])
            )
            future = self.pending.pop(int(headers.get("cseq", "-1").strip() or -1), None)
            if future is not None and not future.done():
                future.set_result(response)
        elif len(first) == 3 and first[2] == "RTSP/1.0":
            pass  # a request from the camera (GET_PARAMETER, ANNOUNCE...): nothing we need answers
        else:
            raise ValueError(f"not RTSP: {lines[0][:60]!r}")
        return end


# ---- authentication ---------------------------------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))')


class _Credentials:
    """A camera's user and password, and the challenge they answer (Basic or Digest, RFC 2617)."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.scheme: str | None = None
        self.params: dict[str, str] = {}
        self.nc = 0

    def accept(self, challenges: str) -> bool:
        """Take the strongest challenge of a 401 answer; False if none is usable."""
        found: dict[str, dict[str, str]] = {}
        for challenge in challenges.split("\n"):
            scheme, _, rest = challenge.strip().partition(" ")
            params = {m[0].lower(): m[1] if m[1] or not m[2] else m[2] for m in _CHALLENGE_PARAM.findall(rest)}
            found[scheme.lower()] = params
        if "digest" in found and found["digest"].get("algorithm", "MD5").upper() == "MD5":
            self.scheme, self.params = "digest", found["digest"]
        elif "basic" in found:
            self.scheme, self.params = "basic", found["basic"]
        else:
            return False
        return True

    def header(self, method: str, uri: str) -> str | None:
        if self.scheme == "basic":
            return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if self.scheme != "digest":
            return None
        p = self.params
        realm, nonce = p.get("realm", ""), p.get("nonce", "")

        def md5(text: str) -> str:
            return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

        ha1 = md5(f"{self.user}:{realm}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        fields = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        if "auth" in [q.strip() for q in p.get("qop", "").split(",")]:
            self.nc += 1
            nc, cnonce = f"{self.nc:08x}", os.urandom(8).hex()
            fields += [
                f'response="{md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")}"',
                "qop=auth",
                f"nc={nc}",
                f'cnonce="{cnonce}"',
            ]
        else:
            fields.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
        if "opaque" in p:
            fields.append(f'opaque="{p["opaque"]}"')
        return "Digest " + ", ".join(fields)


# ---- decoding for analytics, off the loop -----------------------------------------------------


class _SerialDecode:
    """One camera's packets to sample, decoded in order in a shared pool, one task at a time.

    Keyframe mode holds one keyframe at most (the latest wins when the pool is behind); rate mode
    holds up to _RATE_MODE_QUEUE packets, then starts again at the next keyframe."""

    def __init__(
        self, pipeline: PacketPipeline, pool: Executor, every_packet: bool, on_superseded: Callable[[], None] | None = None
    ) -> None:
        """`on_superseded()`: keyframe mode, from offer()'s thread, for each keyframe a newer one replaced."""
        self._pipeline = pipeline
        self._pool = pool
        self._on_superseded = on_superseded if not every_packet else None
        self._limit = _RATE_MODE_QUEUE if every_packet else 1
        self._lock = threading.Lock()
        self._queue: deque[tuple[bytes, int, bool, float]] = deque()  # data, pts, keyframe, arrived (epoch)
        self._running = False
        self._reset = True
        self._closed = False
        self.superseded = 0  # packets dropped because the pool was behind

    def new_stream(self) -> None:
        """A new connection: what waits belongs to the old stream; the next decode starts afresh."""
        with self._lock:
            self._queue.clear()
            self._reset = True

    def offer(self, data: bytes, pts: int, key: bool) -> None:
        replaced = 0
        with self._lock:
            if self._closed:
                return
            if len(self._queue) >= self._limit:
                replaced = len(self._queue)
                self.superseded += replaced
                self._queue.clear()
                if self._limit > 1:
                    self._reset = True  # rate mode: the decoder's references are gone
            self._queue.append((data, pts, key, time.time()))
            running, self._running = self._running, True
        if replaced and self._on_superseded is not None:
            for _ in range(replaced):
                self._on_superseded()
        if running:
            return
        try:
            self._pool.submit(self._drain)
        except RuntimeError:  # the pool was shut down (the gateway is stopping)
            with self._lock:
                self._running = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()

    def _drain(self) -> None:
        for _ in range(_DRAIN_BATCH):
            with self._lock:
                if self._closed or not self._queue:
                    self._running = False
                    return
                item = self._queue.popleft()
                reset, self._reset = self._reset, False
            try:
                if reset:
                    self._pipeline.reset_sampler()
                self._pipeline.sample(*item)
            except Exception:
                log.exception("sampling a frame failed")
        try:  # more waits: go to the back of the pool's queue, so other cameras get their turn
            self._pool.submit(self._drain)
        except RuntimeError:
            with self._lock:
                self._running = False


# ---- the camera -------------------------------------------------------------------------------


class LoopCameraIngest:
    """One rtsp:// camera read on the event loop; the same interface and statuses as CameraIngest.

    Raises InvalidCameraUrl (from the constructor) for a URL that is not rtsp://host/...
    """

    def __init__(
        self,
        camera_id: int,
        url: str,
        *,
        sink: PacketSink,
        on_sample: SampleCallback,
        on_status: StatusCallback,
        loop: asyncio.AbstractEventLoop,
        options: IngestOptions,
        decode_pool: Executor,
        on_handover: Callable[[str, bool], None] | None = None,
        on_sample_lost: Callable[[int], None] | None = None,
        read_batch_s: float = 0.0,
        thumbnailer: Thumbnailer | None = None,
        keyframes_only: bool = False,
    ) -> None:
        """`on_handover(why, quirk)`: called on the loop, and the source goes quiet (no status until
        stopped), when the camera's SDP offers audio, or after _HANDOVER_AFTER sessions in a row
        ended before any picture (quirk=True); without it, audio is ignored and such a camera
        retried. `on_sample_lost(camera_id)`: called on the loop for each keyframe due for a sample
        that the next one replaced before a decode thread was free. `read_batch_s`: while the
        camera is not watched (set_watched), its reads wait for about this much of its stream
        (see the module docstring); 0 reads every packet as it comes. `thumbnailer`: run on each
        sample in the decode thread; its result is on_sample's fourth argument."""
        validate_camera_url(url)
        parts = urlsplit(url)
        if parts.scheme.lower() != "rtsp":
            raise ValueError("the event-loop engine reads rtsp:// cameras only")
        self.camera_id = camera_id
        self.public_url, _ = strip_credentials(url)
        self._host = parts.hostname or ""
        self._port = parts.port or 554
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        self._credentials = _Credentials(user, password) if parts.username is not None else None
        self._target = _Target(self._host, self._port, self.public_url, self._credentials)  # this session's
        self._redact = redactor(url)
        self._sink = sink
        self._on_sample = on_sample
        self._on_status = on_status
        self._loop = loop
        self._options = options
        self._on_handover = on_handover
        self._early_ends = 0  # sessions in a row that ended before any picture
        self._stats = IngestStats()
        self._pipeline = PacketPipeline(
            camera_id, options=options, stats=self._stats, on_sample=self._post_sample, thumbnailer=thumbnailer
        )
        lost = (lambda: on_sample_lost(camera_id)) if on_sample_lost is not None else None
        self._decode = _SerialDecode(self._pipeline, decode_pool, options.sample_mode == "fps", on_superseded=lost)
        self._health = SourceHealth(camera_id, options, self._describe, self._redact)
        self._status = CameraStatus(camera_id=camera_id, state="stopped", since=time.time())
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._connection: _Connection | None = None
        self._last_key = 0.0
        self._read_batch_s = read_batch_s
        self._keyframes_only = keyframes_only and options.sample_mode == "keyframes"
        self._watched = False
        self._reads = 0  # of the connections before the current one

    def __repr__(self) -> str:
        return f"<LoopCameraIngest camera={self.camera_id} url={self.public_url!r}>"

    # -- public, on the loop ------------------------------------------------------------------

    @property
    def status(self) -> CameraStatus:
        """The latest status, as delivered to on_status."""
        return self._status

    @property
    def stats(self) -> IngestStats:
        """A copy of the counters (packets, keyframes, samples, reconnects, drops)."""
        reads = self._reads + (self._connection.reads if self._connection is not None else 0)
        return replace(self._stats, decode_skipped=self._decode.superseded, reads=reads)

    def set_watched(self, watched: bool) -> None:
        """Whether someone consumes the camera's packets live (a viewer, a recorder, a call): then
        every packet is read as it comes; else reads are batched (read_batch_s). On the loop."""
        self._watched = watched
        if watched and self._connection is not None:
            self._connection.wake_at(1)

    def start(self) -> None:
        """Start reading (returns at once)."""
        if self._task is None:
            self._task = self._loop.create_task(self._run(), name=f"media-source-{self.camera_id}")

    async def stop(self) -> None:
        """Close the session (TEARDOWN, best effort) and stop reconnecting. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._decode.close()
        # the caller (the gateway's demand loop, say) may itself be cancelled meanwhile: that goes on
        await cancel_and_wait(self._task)
        self._set_status(CameraStatus(camera_id=self.camera_id, state="stopped", since=time.time()))

    def latest_keyframe_jpeg(self) -> bytes | None:
        """JPEG of the latest keyframe, or None before the first. Blocking: run in a thread."""
        return self._pipeline.snapshot_jpeg()

    def set_sampling(self, wanted: bool) -> None:
        """Whether anyone takes this camera's samples; without, nothing is decoded (PacketPipeline.set_sampling)."""
        self._pipeline.set_sampling(wanted)

    # -- logging --------------------------------------------------------------------------------

    def _describe(self) -> str:
        return self.public_url

    # -- sessions -------------------------------------------------------------------------------

    async def _run(self) -> None:
        self._report("connecting", None)
        while not self._stopped:
            packets = self._stats.packets
            try:
                await self._session()
                reason, detail = "ended", "stream ended"
            except _HandOver as handover:
                self._hand_over(handover.why, quirk=False)
                return
            except SourceFailure as failure:
                reason, detail = failure.reason, failure.detail
            except Exception as exc:  # a bug: log it, keep going
                reason, detail = "ended", "".join(traceback.format_exception(exc))
            if self._stopped:
                break
            early = reason == "ended" and self._stats.packets == packets
            self._early_ends = self._early_ends + 1 if early else 0
            if self._on_handover is not None and self._early_ends >= _HANDOVER_AFTER:
                self._hand_over(f"{_HANDOVER_AFTER} sessions ended before any picture: {self._redact(detail)}", quirk=True)
                return
            self._report("offline", reason, detail)
            await asyncio.sleep(self._health.next_delay())
            self._stats.reconnects += 1

    def _hand_over(self, why: str, *, quirk: bool) -> None:
        if self._on_handover is not None and not self._stopped:
            self._on_handover(why, quirk)

    async def _session(self) -> None:
        """One session, following up to _MAX_REDIRECTS redirects of its DESCRIBE (as FFmpeg does)."""
        self._target = _Target(self._host, self._port, self.public_url, self._credentials)
        for redirects in range(_MAX_REDIRECTS + 1):
            try:
                await self._session_at(self._target)
                return
            except _Redirected as redirect:
                if redirects == _MAX_REDIRECTS:
                    raise SourceFailure("unreachable", f"more than {_MAX_REDIRECTS} redirects") from None
                self._target = self._redirect(redirect.location)

    def _redirect(self, location: str) -> _Target:
        parts = urlsplit(location)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise SourceFailure("unreachable", f"redirected to {self._redact(location)}, not an rtsp:// camera")
        url, _ = strip_credentials(location)
        host, port = parts.hostname, parts.port or 554
        credentials = self._target.credentials
        if parts.username is not None:
            credentials = _Credentials(unquote(parts.username), unquote(parts.password or ""))
        elif host.lower() != self._target.host.lower():
            credentials = None  # as curl does: the password goes to the camera's host only
        log.info("[camera %s] %s redirects to %s", self.camera_id, self._redact(self._target.url), self._redact(url))
        return _Target(host, port, url, credentials)

    async def _session_at(self, target: _Target) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._options.timeout_s
        connection = _Connection(lambda _view: None)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: connection, target.host, target.port)
        except TimeoutError:
            raise SourceFailure("timeout", f"no connection within {timeout:g} s") from None
        except OSError as exc:
            raise SourceFailure("unreachable", str(exc)) from None
        self._connection = connection
        session = ""
        try:
            describe = await self._request(connection, "DESCRIBE", target.url, {"Accept": "application/sdp"})
            base = describe.headers.get("content-base") or describe.headers.get("content-location") or target.url
            sdp = describe.body.decode("utf-8", "replace")
            track = parse_sdp(sdp, base)
            if self._on_handover is not None and sdp_has_audio(sdp):
                raise _HandOver("it offers audio, which the event-loop engine does not carry")
            setup = await self._request(
                connection, "SETUP", track.control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
            )
            session, _, params = setup.headers.get("session", "").partition(";")
            session = session.strip()
            keepalive_s = _session_timeout(params) / 2
            channel = re.search(r"interleaved=(\d+)", setup.headers.get("transport", ""))
            connection.rtp_channel = int(channel.group(1)) if channel else 0
            self._pipeline.begin_rtp(track.rate)
            self._decode.new_stream()
            connection.on_rtp = depacketizer(track, self._access_unit, keyframes_only=self._keyframes_only)
            self._last_key = time.monotonic()
            headers = {"Session": session, "Range": "npt=0.000-"} if session else {"Range": "npt=0.000-"}
            await self._request(connection, "PLAY", base, headers)
            await self._watch(connection, base, session, keepalive_s)
        finally:
            self._connection = None
            self._reads += connection.reads
            if not connection.closed.done():
                if session:
                    self._send_quietly(connection, "TEARDOWN", target.url, {"Session": session})
                connection.close("closed by the hub", flush=True)

    async def _request(self, connection: _Connection, method: str, url: str, headers: dict[str, str]) -> RtspResponse:
        """Send a request and wait for its answer (timeout_s); authenticate once if challenged."""
        for attempt in range(2):
            sent = dict(headers)
            credentials = self._target.credentials
            if credentials is not None and (auth := credentials.header(method, url)) is not None:
                sent["Authorization"] = auth
            try:
                async with asyncio.timeout(self._options.timeout_s):
                    response = await connection.send(method, url, sent)
            except TimeoutError:
                raise SourceFailure("timeout", f"no answer to {method} within {self._options.timeout_s:g} s") from None
            except ConnectionError as exc:
                raise SourceFailure("unreachable" if method == "DESCRIBE" else "ended", str(exc)) from None
            if response.status == 401 and attempt == 0 and credentials is not None:
                if credentials.accept(response.headers.get("www-authenticate", "")):
                    continue
            if response.status in (401, 403):
                raise SourceFailure("auth_refused", f"{method}: RTSP {response.status} {response.reason}")
            if method == "DESCRIBE" and response.status in _REDIRECTS and response.headers.get("location"):
                raise _Redirected(response.headers["location"])
            if response.status != 200:
                reason = "unreachable" if method == "DESCRIBE" else "ended"
                raise SourceFailure(reason, f"{method}: RTSP {response.status} {response.reason}")
            return response
        raise AssertionError("unreachable")  # pragma: no cover -- the loop returns or raises

    def _send_quietly(self, connection: _Connection, method: str, url: str, headers: dict[str, str]) -> None:
        """A request whose answer nobody waits for (keep-alive, TEARDOWN)."""
        credentials = self._target.credentials
        if credentials is not None and (auth := credentials.header(method, url)) is not None:
            headers = {**headers, "Authorization": auth}
        future = connection.send(method, url, headers)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _watch(self, connection: _Connection, url: str, session: str, keepalive_s: float) -> None:
        """While the camera streams: end the session on silence (timeout_s) or a closed connection."""
        timeout = self._options.timeout_s
        period = min(1.0, timeout / 4)
        next_keepalive = time.monotonic() + keepalive_s
        counted, counted_at, rate = connection.received, time.monotonic(), 0.0
        while True:
            done, _ = await asyncio.wait((connection.closed,), timeout=period)
            if done:
                raise SourceFailure("ended", connection.closed.result())
            now = time.monotonic()
            if now - connection.last_rx > timeout:
                raise SourceFailure("timeout", f"nothing received for {timeout:g} s")
            if self._keyframes_only and now - self._last_key > self._options.keyframe_timeout_s:
                self._report("degraded", "no_keyframe")  # no picture reaches _access_unit to notice
            if now >= next_keepalive:
                next_keepalive = now + keepalive_s
                self._send_quietly(connection, "OPTIONS", url, {"Session": session} if session else {})
            # bytes per second: the lower of the last two ticks', so a slowing stream is followed at once
            measured = (connection.received - counted) / max(now - counted_at, 1e-3)
            counted, counted_at = connection.received, now
            rate, previous = measured, rate
            self._pace_reads(connection, now, min(measured, previous))

    def _pace_reads(self, connection: _Connection, now: float, rate: float) -> None:
        """Batch the reads of a camera nobody watches: wake for about read_batch_s of its stream."""
        batch = self._read_batch_s
        if batch <= 0:
            return
        if self._watched or now - connection.last_rx > 3 * batch:
            wanted = 1  # every packet as it comes; or the stream slowed: read what waits now
        else:
            wanted = max(1, min(_MAX_READ_BATCH, int(rate * batch)))
        current = connection.read_at_least
        if wanted == 1 or abs(wanted - current) * 4 > current:  # not for every wobble of the bitrate
            connection.wake_at(wanted)

    # -- per access unit (on the loop, for every picture of every camera) ------------------------

    def _access_unit(self, data: bytes, timestamp: int, key: bool) -> None:
        packet = self._pipeline.push_access_unit(data, timestamp, key)
        self._stats.packets += 1
        self._sink.on_packet(packet)
        now = self._connection.last_rx if self._connection is not None else time.monotonic()
        if key:
            self._last_key = now
        if now - self._last_key > self._options.keyframe_timeout_s:
            self._report("degraded", "no_keyframe")
        elif self._health.reported[0] != "online":
            self._report("online", None)
        self._health.check_stable(now)
        if self._pipeline.wants_sample(key) and self._pipeline.sample_due(packet.pts):
            self._decode.offer(data, packet.pts, key)

    # -- status and samples ---------------------------------------------------------------------

    def _report(self, state: State, reason: str | None, detail: str = "") -> None:
        status = self._health.report(state, reason, detail)
        if status is not None:
            self._set_status(status)

    def _set_status(self, status: CameraStatus) -> None:
        if self._stopped and status.state != "stopped":
            return
        self._status = status
        self._on_status(status)

    def _post_sample(self, epoch_ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        """From the decode pool: hand the sample to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            self._loop.call_soon_threadsafe(self._deliver_sample, epoch_ts, frame, thumb)

    def _deliver_sample(self, epoch_ts: float, frame: np.ndarray, thumb: np.ndarray | None) -> None:
        if not self._stopped:
            self._on_sample(self.camera_id, epoch_ts, frame, thumb)


def _session_timeout(params: str) -> float:
    """The session timeout a SETUP answer gives (`Session: id;timeout=N`), or RFC 2326's 60 s."""
    match = re.search(r"timeout\s*=\s*(\d+)", params)
    seconds = int(match.group(1)) if match else _DEFAULT_SESSION_TIMEOUT_S
    return float(max(10, seconds))
