"""RTP plumbing of SIP terminals: UDP endpoints in RTP/RTCP port pairs, H.264 access-unit assembly."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.rtp import RtpPacket

from fusionhub.media.errors import MediaError

FrameCallback = Callable[[bytes, int], None]  # (Annex-B access unit or audio frame, RTP timestamp)
MAX_AU_BYTES = 4 * 1024 * 1024  # an access unit larger than this is garbage: dropped


class NoRtpPorts(MediaError):
    """No free RTP/RTCP port pair could be bound."""


class Udp(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_packet = on_packet
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_packet(data, (str(addr[0]), int(addr[1])))


def ignore(data: bytes, addr: tuple[str, int]) -> None:
    pass


async def bind_pair(
    host: str, rtp: Callable[[bytes, tuple[str, int]], None], rtcp: Callable[[bytes, tuple[str, int]], None] = ignore
) -> tuple[Udp, Udp, int]:
    """An RTP socket on an even port and the RTCP socket on the next one."""
    loop = asyncio.get_running_loop()
    for _ in range(50):
        port = 20000 + 2 * secrets.randbelow(10000)
        try:
            _, rtp_proto = await loop.create_datagram_endpoint(lambda: Udp(rtp), local_addr=(host, port))
        except OSError:
            continue
        try:
            _, rtcp_proto = await loop.create_datagram_endpoint(lambda: Udp(rtcp), local_addr=(host, port + 1))
        except OSError:
            assert rtp_proto.transport is not None
            rtp_proto.transport.close()
            continue
        return rtp_proto, rtcp_proto, port
    raise NoRtpPorts("no free RTP port pair")


class H264Assembler:
    """RTP H.264 packets → Annex-B access units (4-byte start codes), complete ones only."""

    def __init__(self, on_frame: FrameCallback, on_loss: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_loss = on_loss
        self._parts: list[bytes] = []
        self._size = 0
        self._ts: int | None = None
        self._seq: int | None = None
        self._broken = False

    def add(self, packet: RtpPacket) -> None:
        if self._seq is not None and packet.sequence_number != (self._seq + 1) & 0xFFFF:
            self._broken = True
            self._on_loss()
        self._seq = packet.sequence_number
        if self._ts is not None and packet.timestamp != self._ts:
            self._reset()  # the previous access unit never got its marker
        self._ts = packet.timestamp
        try:
            _, data = H264PayloadDescriptor.parse(packet.payload)
        except ValueError:
            self._broken = True
            return
        self._parts.append(data)
        self._size += len(data)
        if self._size > MAX_AU_BYTES:
            self._broken = True
        if packet.marker:
            if not self._broken and self._size:
                self._on_frame(b"".join(self._parts), packet.timestamp)
            self._reset()

    def _reset(self) -> None:
        self._parts, self._size, self._ts, self._broken = [], 0, None, False
