"""A hook below aiortc's decoder: hand each received RTP packet to our code, decode nothing.

aiortc's `RTCRtpReceiver` always runs every packet through a jitter buffer into a decoder thread
whose frames pile up in the remote track's queue, an unbounded `asyncio.Queue` that fills when
nobody reads the track. A hub that only forwards encoded packets (push-to-talk, WHIP ingest)
needs neither, so `tap_receiver` replaces the receiver's packet handler on that one instance:
the packets (already SRTP-decrypted and parsed, header extensions included) go to a callback,
the jitter buffer and the decoder never see them, and nothing accumulates anywhere.

What this relies on in aiortc (pinned to 1.16.0 in requirements.txt; `check_aiortc()` fails
loudly at start-up if it changes):
- `RTCDtlsTransport` delivers each RTP packet with
  `await receiver._handle_rtp_packet(packet, arrival_time_ms=...)`, looked up on the instance;
- `RtpPacket.payload` is the codec payload (for Opus: one Opus packet) and
  `RtpPacket.extensions.audio_level` the RFC 6464 `(voice, -dBov)` pair when negotiated.
Side effect: the tapped receiver sends no RTCP receiver reports (its statistics are fed by the
handler we replace); senders on loopback and browsers do not need them for audio.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import aiortc
from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from fusionhub.media.errors import MediaError

log = logging.getLogger(__name__)

TESTED_AIORTC = "1.16.0"

RtpHandler = Callable[[RtpPacket, int], None]  # (packet, arrival time in ms); runs on the loop, must not block


class TapUnsupported(MediaError):
    """The installed aiortc does not deliver RTP the way `tap_receiver` expects."""


def check_aiortc() -> None:
    """Raise TapUnsupported unless aiortc's receiver still has the private hook we replace."""
    handler = getattr(RTCRtpReceiver, "_handle_rtp_packet", None)
    if handler is None or not inspect.iscoroutinefunction(handler):
        raise TapUnsupported(f"aiortc {aiortc.__version__}: RTCRtpReceiver._handle_rtp_packet is gone")
    params = list(inspect.signature(handler).parameters)
    if params[:3] != ["self", "packet", "arrival_time_ms"]:
        raise TapUnsupported(f"aiortc {aiortc.__version__}: _handle_rtp_packet takes {params}, not (packet, arrival_time_ms)")
    if aiortc.__version__ != TESTED_AIORTC:
        log.warning("aiortc %s: the RTP tap was tested with %s only", aiortc.__version__, TESTED_AIORTC)


def tap_receiver(receiver: RTCRtpReceiver, handler: RtpHandler) -> None:
    """Send every RTP packet `receiver` gets to `handler` instead of its jitter buffer and decoder.

    Call it before the remote description is applied (no packet can arrive earlier). The remote
    track the receiver exposes then never produces a frame; do not read it.
    """

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        try:
            handler(packet, arrival_time_ms)
        except Exception:
            # one bad packet must not end the peer connection's receive loop
            log.exception("RTP tap handler failed")

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def audio_level_dbov(packet: RtpPacket) -> int | None:
    """The packet's RFC 6464 audio level in -dBov (0 loudest … 127 silence), None when absent."""
    level = packet.extensions.audio_level
    if level is None:
        return None
    try:
        return max(0, min(127, int(level[1])))
    except (TypeError, ValueError, IndexError):
        return None
