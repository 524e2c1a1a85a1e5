"""A push-to-talk room: floor control, forwarding of the holder's Opus packets, levels, recording.

The room owns one FloorControl (signaling/floor.py) and drives its timers with one task. Every
RTP packet a participant sends is asked `floor.on_media()`: the holder's are stamped on the room
timeline and handed to every other participant's ForwardTrack and to the burst recorder; the
rest are dropped and counted. Floor events become data-channel messages (signaling/intercom.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc.rtp import RtpPacket

from fusionhub.media.intercom.config import IntercomConfig
from fusionhub.media.intercom.forward import RoomClock, make_packet
from fusionhub.media.intercom.recorder import BurstRecorder, Speaker
from fusionhub.media.intercom.session import IntercomSession
from fusionhub.media.rtptap import audio_level_dbov
from fusionhub.signaling.errors import ProtocolError
from fusionhub.signaling.floor import Ended, FloorControl, FloorEvent, Granted
from fusionhub.signaling.intercom import FloorMsg, encode, event_message, floor_json, parse_client
from fusionhub.tasks import cancel_and_wait, wait_event

log = logging.getLogger(__name__)

LEVEL_FLOOR_DBOV = 60  # -60 dBov and quieter shows as an empty meter


def level_from(packet: RtpPacket) -> float:
    """The talker's level 0–1 from the RFC 6464 header extension, else from the packet size.

    Opus is variable bitrate: louder speech makes larger packets, a usable meter without decoding.
    """
    dbov = audio_level_dbov(packet)
    if dbov is not None:
        return max(0.0, 1.0 - min(dbov, LEVEL_FLOOR_DBOV) / LEVEL_FLOOR_DBOV)
    return max(0.0, min(1.0, (len(packet.payload) - 10) / 150))


class IntercomRoom:
    """One room's live state; sessions are added by the Intercom service, which also closes the room."""

    def __init__(
        self,
        room_id: str,
        config: IntercomConfig,
        *,
        recorder: BurstRecorder | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.room_id = room_id
        self._config = config
        self._recorder = recorder
        self._clock = clock
        self._wall = wall
        self.floor = FloorControl(config.floor)
        self._room_clock = RoomClock()
        self._sessions: dict[str, IntercomSession] = {}
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._sent_version = -1
        self._level_at = 0.0
        self._level_peak = 0.0
        self.forwarded = 0
        self.grants = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the floor timers."""
        if self._timer is None:
            self._timer = asyncio.create_task(self._run_timers(), name=f"ptt-room-{self.room_id}")

    async def close(self) -> None:
        """Stop the timers and write the burst in progress (sessions are closed by the service first)."""
        task, self._timer = self._timer, None
        await cancel_and_wait(task)
        if self._recorder is not None:
            await self._recorder.close()

    async def _run_timers(self) -> None:
        while True:
            deadline = self.floor.next_deadline()
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self._clock())
            await wait_event(self._wake, timeout)
            try:
                self._apply(self.floor.tick(self._clock()))
            except Exception:  # the timers must survive one bad pass
                log.exception("room %s: floor timer pass failed", self.room_id)

    # -- membership ---------------------------------------------------------------------------------

    @property
    def sessions(self) -> dict[str, IntercomSession]:
        """Participants by session id."""
        return self._sessions

    def add(self, session: IntercomSession) -> None:
        """A participant joined (its channel opens later: `on_open` sends it the state)."""
        self._sessions[session.id] = session
        self._broadcast_participants()

    def remove(self, session: IntercomSession) -> None:
        """A participant left: its floor or queue place goes."""
        if self._sessions.get(session.id) is not session:
            return
        del self._sessions[session.id]
        self._apply(self.floor.leave(session.id, self._clock()))
        self._broadcast_participants()

    def describe(self, session_id: str) -> dict[str, Any]:
        """A participant as shown to others (a left one keeps its id only)."""
        session = self._sessions.get(session_id)
        return session.describe() if session is not None else {"id": session_id}

    def _epoch(self, mono: float) -> float:
        return self._wall() - (self._clock() - mono)

    def state(self) -> dict[str, Any]:
        """Participants and floor, as the API and late joiners see them."""
        return {
            "participants": [s.describe() for s in self._sessions.values()],
            "floor": floor_json(self.floor.snapshot(), self.describe, to_epoch=self._epoch),
        }

    # -- data channel --------------------------------------------------------------------------------

    def on_open(self, session: IntercomSession) -> None:
        """The participant's floor channel is open: tell it who is there and who talks."""
        session.send(encode(FloorMsg.HELLO, you=session.id, room_id=self.room_id, **self.state()))

    def on_message(self, session: IntercomSession, text: str) -> None:
        """A floor request or release from a participant."""
        try:
            kind, emergency = parse_client(text)
        except ProtocolError as exc:
            session.send(encode(FloorMsg.ERROR, code=exc.code, message=exc.message))
            return
        if kind is FloorMsg.REQUEST:
            self.request(session.id, emergency=emergency)
        else:
            self.release(session.id)

    def request(self, session_id: str, *, emergency: bool = False) -> None:
        """Ask for the floor on behalf of a participant (its role sets the priority)."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        if emergency:
            log.info("room %s: EMERGENCY floor request by %s", self.room_id, session.participant.name)
        events = self.floor.request(
            session_id, priority=session.participant.priority, emergency=emergency, now=self._clock()
        )
        self._apply(events)

    def release(self, session_id: str) -> None:
        """A participant stops talking or gives up waiting."""
        self._apply(self.floor.release(session_id, self._clock()))

    def revoke(self) -> None:
        """An operator takes the floor back from whoever holds it."""
        self._apply(self.floor.revoke(self._clock()))

    def _apply(self, events: list[FloorEvent]) -> None:
        for event in events:
            if isinstance(event, Granted):
                self.grants += 1
                self._room_clock.new_burst()
                self._level_peak = 0.0
                holder = self._sessions.get(event.participant)
                if self._recorder is not None and holder is not None:
                    p = holder.participant
                    self._recorder.start(Speaker(holder.id, p.user_id, p.name))
            elif isinstance(event, Ended) and self._recorder is not None:
                self._recorder.finish(event.participant, event.reason)
            participant, text = event_message(event)
            target = self._sessions.get(participant)
            if target is not None:
                target.send(text)
        snap = self.floor.snapshot()
        if snap.version != self._sent_version:
            self._sent_version = snap.version
            self._wake.set()  # the timers' next deadline may have moved
            text = encode(FloorMsg.FLOOR, **floor_json(snap, self.describe, to_epoch=self._epoch))
            for session in list(self._sessions.values()):
                session.send(text)

    def _broadcast_participants(self) -> None:
        text = encode(FloorMsg.PARTICIPANTS, participants=[s.describe() for s in self._sessions.values()])
        for session in list(self._sessions.values()):
            session.send(text)

    # -- media ---------------------------------------------------------------------------------------

    def on_rtp(self, session: IntercomSession, packet: RtpPacket) -> None:
        """One Opus packet from a participant: forward it if it holds the floor, else drop it."""
        now = self._clock()
        if not self.floor.on_media(session.id, now):
            session.dropped_in += 1
            return
        pts = self._room_clock.stamp(session.id, packet.timestamp, now)
        if pts is None:
            return
        payload = packet.payload
        out = make_packet(payload, pts)
        for other in self._sessions.values():
            if other is not session:
                other.track.offer(out)
        self.forwarded += 1
        if self._recorder is not None:
            self._recorder.add(session.id, pts, payload)
        self._level_peak = max(self._level_peak, level_from(packet))
        if now - self._level_at >= self._config.level_interval_s:
            self._level_at = now
            text = encode(FloorMsg.LEVEL, id=session.id, level=round(self._level_peak, 3))
            self._level_peak = 0.0
            for other in self._sessions.values():
                other.send(text, perishable=True)

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring."""
        return {
            "room_id": self.room_id,
            "participants": len(self._sessions),
            "holder": self.floor.holder,
            "forwarded": self.forwarded,
            "grants": self.grants,
            "late": self._room_clock.late,
            "recorded": self._recorder.written if self._recorder is not None else 0,
            "sessions": [s.stats() for s in self._sessions.values()],
        }
