"""Feeding aiortc's RTCRtpSender ready-made RTP payloads: no encoder, no per-viewer packetization.

aiortc's sender asks its track for the next frame and hands anything that is not an `av.Frame`
to its encoder's `pack()`, which for H.264 splits the access unit into NAL units and those into
RTP payloads (STAP-A / FU-A). For a relayed camera that work is the same for every viewer, so
the relay does it once per packet (`h264_payloads`, memoised on the shared RelayItem) and each
viewer's sender gets a `PassthroughEncoder` whose `pack()` returns the payloads as they are.

Two hooks on an RTCRtpSender make that possible without forking aiortc, both set once per
sender by `install_passthrough` before it starts:
- its (name-mangled) encoder slot, which aiortc fills lazily only when it is still empty;
- `_send_keyframe`, which aiortc calls on a viewer's PLI or FIR; with no encoder to force a
  keyframe, the callback answers from the relay's GOP cache instead.
`check_sender_hooks()` verifies both exist, so an aiortc upgrade that renames them fails loudly
(at gateway start and in the tests) instead of silently encoding.

`use_fast_ntp_clock()` swaps aiortc's NTP clock (called twice per RTP packet sent, through
datetime arithmetic) for an integer one giving the same values; like the ICE host pinning it
is process-wide, applied by the gateway at start and undone at stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import aiortc.clock
from aiortc import RTCRtpSender
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from av.frame import Frame
from av.packet import Packet

from fusionhub.media.errors import MediaError

_ENCODER_SLOT = "_RTCRtpSender__encoder"
_NTP_UNIX_OFFSET_NS = 2_208_988_800 * 1_000_000_000  # 1900-01-01 to 1970-01-01
_ORIGINAL_NTP_TIME: Callable[[], int] = aiortc.clock.current_ntp_time


class RtpFrame:
    """One access unit, ready to send: its RTP payloads and its RTP timestamp (90 kHz, this viewer's)."""

    __slots__ = ("payloads", "timestamp", "keyframe")

    def __init__(self, payloads: list[bytes], timestamp: int, keyframe: bool) -> None:
        self.payloads = payloads
        self.timestamp = timestamp
        self.keyframe = keyframe


class PassthroughEncoder(Encoder):
    """The sender's "encoder" for relayed video: returns the payloads it is given."""

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise MediaError("a passthrough sender never encodes (it was handed a decoded frame)")

    def pack(self, packet: Packet) -> tuple[list[bytes], int]:
        frame = cast(RtpFrame, packet)  # RelayTrack hands out RtpFrame, never av.Packet
        return frame.payloads, frame.timestamp


def h264_payloads(access_unit: bytes) -> list[bytes]:
    """RTP payloads (packetization-mode 1) of one Annex-B access unit, exactly as aiortc would cut them."""
    return H264Encoder._packetize(H264Encoder._split_bitstream(access_unit))


def check_sender_hooks() -> None:
    """Raise MediaError unless this aiortc has the two sender hooks the passthrough relies on."""
    init = RTCRtpSender.__init__.__code__.co_names
    step = RTCRtpSender._next_encoded_frame.__code__.co_names
    if (
        _ENCODER_SLOT not in init
        or _ENCODER_SLOT not in step
        or "pack" not in step
        or not callable(getattr(RTCRtpSender, "_send_keyframe", None))
    ):
        raise MediaError("this aiortc version lacks the RTCRtpSender hooks the H.264 passthrough needs")


def install_passthrough(sender: RTCRtpSender, on_keyframe_request: Callable[[], None]) -> None:
    """Make `sender` send RtpFrames without encoding, and route its PLI/FIR to `on_keyframe_request`.

    Call it before the sender starts (i.e. before the answer is applied).
    """
    if getattr(sender, _ENCODER_SLOT, None) is not None:
        raise MediaError("the sender already has an encoder")
    setattr(sender, _ENCODER_SLOT, PassthroughEncoder())
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]


def sender_encoder(sender: RTCRtpSender) -> Encoder | None:
    """The encoder a sender uses (for diagnostics: a passthrough viewer's is a PassthroughEncoder)."""
    return cast(Encoder | None, getattr(sender, _ENCODER_SLOT, None))


def _fast_ntp_time() -> int:
    """The current time as a 64-bit NTP timestamp (what aiortc.clock.current_ntp_time returns)."""
    seconds, ns = divmod(time.time_ns() + _NTP_UNIX_OFFSET_NS, 1_000_000_000)
    return (seconds << 32) | (ns * (1 << 32) // 1_000_000_000)


def use_fast_ntp_clock(enabled: bool) -> None:
    """Make aiortc read the NTP clock with integer arithmetic (True) or its own way again (False)."""
    aiortc.clock.current_ntp_time = _fast_ntp_time if enabled else _ORIGINAL_NTP_TIME
