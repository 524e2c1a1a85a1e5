"""Conference terminals in a video call: what the hub sends a terminal the commander added.

A terminal takes ONE video and ONE audio stream. It is shown the caller's camera (relayed H.264,
never encoded) and hears the call's people: with one party sending in the terminal's own codec
(an Opus terminal, the commander alone), their packets go as received; otherwise the parties'
audio is mixed once in the terminal's codec (media/relaymix.py: one decoder per party, one
encoder per terminal, whatever the number of listeners). The people in the call hear and see
the terminal by viewing it as a feed of the call (their browsers mix what they receive), so
everybody hears everybody else and nobody hears themselves.

`refresh(call)` is called when a terminal is added, when an added terminal connects (dialled
after it was added, or calling in), and whenever a party starts publishing; `end`
when the call ends. Each mix is owned here and stopped there, or at `close()`.
"""

from __future__ import annotations

import logging

from fusionhub.console.api_terminals import publisher_name as terminal_publisher
from fusionhub.media.audio import AudioRelay
from fusionhub.media.gateway import MediaGateway
from fusionhub.media.publishers import UnknownPublisher
from fusionhub.media.relaymix import RelayMix, mixable
from fusionhub.media.sip import SipSession
from fusionhub.signaling.calls import Call

log = logging.getLogger(__name__)


def party_publisher(call_id: str, user_id: int) -> str:
    """The WHIP publisher name of one party of a call (the call id is random, so unguessable)."""
    return f"call-{call_id}-{user_id}"


class TerminalBridge:
    """The terminals of every live call: their video, and their audio passthrough or mix."""

    def __init__(self, media: MediaGateway) -> None:
        self._media = media
        self._mixes: dict[tuple[str, int], RelayMix] = {}

    async def refresh(self, call: Call) -> None:
        """(Re)connect every dialled terminal of `call` to what the parties publish now."""
        if call.state != "active":
            return
        pubs = self._media.publishers
        voices: dict[str, AudioRelay] = {}
        caller = None
        for uid in call.party_ids():
            try:
                pub = pubs.get(party_publisher(call.call_id, uid))
            except UnknownPublisher:
                continue  # not sending yet: refreshed again when it does
            voices[str(uid)] = pub.outputs.audio
            if uid == call.caller.user_id:
                caller = pub
        for terminal_id in call.terminal_ids:
            try:
                terminal = pubs.get(terminal_publisher(terminal_id))
            except UnknownPublisher:
                continue  # not dialled: it is only watched
            session = terminal.session
            if not isinstance(session, SipSession):
                continue
            if caller is not None:
                session.send_video(caller.outputs.video)
            await self._audio(call, terminal_id, session, voices)

    async def _audio(self, call: Call, terminal_id: int, session: SipSession, voices: dict[str, AudioRelay]) -> None:
        key = (call.call_id, terminal_id)
        fmt = session.audio_format
        if fmt is None or not voices:
            return
        single = next(iter(voices.values())) if len(voices) == 1 else None
        if single is not None and single.format is not None and single.format.codec == fmt.codec:
            session.send_audio(single)  # one voice in the terminal's codec: as received, no encoding
            return
        if not mixable(fmt):
            log.warning("terminal %s: no mix in %s; it sees the call but does not hear it", terminal_id, fmt.codec)
            return
        mix = self._mixes.get(key)
        if mix is not None and mix.format != fmt:  # the terminal was dialled again and chose another codec
            await mix.stop()
            mix = None
        if mix is None:
            mix = self._mixes[key] = RelayMix(f"call-{call.call_id[:6]} terminal-{terminal_id}", fmt)
            mix.start()
        mix.set_inputs(voices)
        if not session.send_audio(mix.relay):
            log.warning("terminal %s: the call's audio was not sent", terminal_id)
            return
        log.info("terminal %s hears %d party(ies) of call %s, mixed in %s", terminal_id, len(voices), call.call_id[:6], fmt.codec)

    def mixes(self, call_id: str) -> list[RelayMix]:
        """The running mixes of a call (for stats and tests)."""
        return [m for (cid, _), m in self._mixes.items() if cid == call_id]

    async def end(self, call_id: str) -> None:
        """The call ended: stop its mixes (the terminals' audio from the call stops with them)."""
        for key in [k for k in self._mixes if k[0] == call_id]:
            await self._mixes.pop(key).stop()

    async def close(self) -> None:
        """Stop every mix (safe twice)."""
        for call_id in {cid for cid, _ in self._mixes}:
            await self.end(call_id)
