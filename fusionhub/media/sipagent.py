"""The hub's SIP user agent: one UDP socket (aiosipua) for INVITE/ACK/BYE both ways, and in-dialog
INFO for video keyframe requests (RFC 5168 `picture_fast_update`: many conference terminals ask for,
and answer, keyframes only this way)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiosipua import IncomingCall, SipUAC, SipUAS, UdpSipTransport
from aiosipua.message import SipRequest

from fusionhub.media.siprtp import Udp

log = logging.getLogger(__name__)

MEDIA_CONTROL = "application/media_control+xml"
PICTURE_FAST_UPDATE = (
    '<?xml version="1.0" encoding="utf-8" ?><media_control><vc_primitive><to_encoder>'
    "<picture_fast_update/></to_encoder></vc_primitive></media_control>"
)


class _SipTransport(UdpSipTransport):
    """aiosipua's UDP transport, bound through our protocol (its own asserts the transport's class,
    which Python 3.11's selector datagram transport fails)."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: Udp(self._dispatch), local_addr=self.local_addr)
        self._udp_transport = transport


class SipAgent:
    """The hub's SIP user agent on one UDP socket; owns the transport. stop() is safe twice."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._transport: UdpSipTransport | None = None
        self.uac: SipUAC | None = None
        self._uas: SipUAS | None = None
        self._byes: dict[str, Callable[[], None]] = {}
        self._keyframe_requests: dict[str, Callable[[], None]] = {}
        self._lock = asyncio.Lock()
        # a terminal calls the hub: decide (accept through a SipSession, or reject); on the loop, must not block
        self.on_incoming: Callable[[IncomingCall], None] | None = None

    async def start(self) -> None:
        """Bind the SIP socket (on first use)."""
        async with self._lock:
            if self._transport is not None:
                return
            transport = _SipTransport(local_addr=(self.host, self._port))
            self.uac = SipUAC(transport)
            self._uas = SipUAS(transport, uac=self.uac)
            self._uas.on_bye = lambda call, request: self._remote_bye(str(request.call_id or ""))
            self._uas.on_invite = self._invite
            # aiosipua (pinned) answers INFO with 405 and has no hook for it: route it here
            self._uas._handlers["INFO"] = self._info
            await self._uas.start()  # routes messages to the UAS/UAC and binds the socket
            assert transport._udp_transport is not None
            self._port = int(transport._udp_transport.get_extra_info("sockname")[1])
            transport.local_addr = (self.host, self._port)
            self._transport = transport
            log.info("SIP agent on %s:%d", self.host, self._port)

    @property
    def address(self) -> tuple[str, int]:
        """Where the agent listens (after start)."""
        return self.host, self._port

    def _invite(self, call: IncomingCall) -> None:
        if self.on_incoming is None:
            call.reject(486, "Busy Here")
        else:
            self.on_incoming(call)

    def on_bye(self, call_id: str, callback: Callable[[], None]) -> None:
        """Call `callback` when the far end hangs up the call `call_id`."""
        self._byes[call_id] = callback

    def on_keyframe_request(self, call_id: str, callback: Callable[[], None]) -> None:
        """Call `callback` when the far end of `call_id` asks for a keyframe by SIP INFO."""
        self._keyframe_requests[call_id] = callback

    def forget(self, call_id: str) -> None:
        """No more callbacks for that call."""
        self._byes.pop(call_id, None)
        self._keyframe_requests.pop(call_id, None)

    def _info(self, request: SipRequest, addr: tuple[str, int]) -> None:
        """An in-dialog INFO: 200 for a picture_fast_update (then the keyframe callback), 415 for
        other bodies, 481 outside a dialog."""
        uas = self._uas
        assert uas is not None
        call_id = str(request.call_id or "")
        _, dialog = uas._find_dialog(call_id)
        if dialog is None:
            uas._send_error(request, 481, "Call/Transaction Does Not Exist")
            return
        if not uas._validate_in_dialog(dialog, request):
            return
        wanted = (request.content_type or "").lower() == MEDIA_CONTROL and "picture_fast_update" in request.text
        reply = dialog.create_response(request, 200, "OK") if wanted else dialog.create_response(request, 415, "Unsupported Media Type")
        uas.transport.send_reply(reply)
        callback = self._keyframe_requests.get(call_id) if wanted else None
        if callback is not None:
            callback()

    def send_keyframe_request(self, call: object) -> bool:
        """Ask the far end of an established call for a keyframe by SIP INFO; False when not possible."""
        uac = self.uac
        dialog = getattr(call, "dialog", None)
        remote = call.source_addr if isinstance(call, IncomingCall) else getattr(call, "remote_addr", None)
        if uac is None or dialog is None or remote is None:
            return False
        try:
            uac.send_info(dialog, PICTURE_FAST_UPDATE, MEDIA_CONTROL, remote)
        except ValueError:  # the dialog is not confirmed (any more)
            return False
        return True

    def _remote_bye(self, call_id: str) -> None:
        callback = self._byes.pop(call_id, None)
        if callback is not None:
            callback()

    async def stop(self) -> None:
        """Close the SIP socket."""
        transport, self._transport = self._transport, None
        if self.uac is not None:
            self.uac.close()
        if transport is not None:
            await transport.stop()
