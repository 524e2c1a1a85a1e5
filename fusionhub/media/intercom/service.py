"""The intercom service: every push-to-talk room and session of this hub process.

The console decides who may join which room (dispatch knows users, teams and cases) and hands
a `Participant` to `join()`; this class owns the rooms, the sessions and the recorders. A room
lives while it has participants; its bursts are written even after the last one left.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration

from fusionhub.media.errors import GatewayFull, MediaError, UnknownSession
from fusionhub.media.intercom.config import IntercomConfig
from fusionhub.media.intercom.recorder import BurstCallback, BurstRecorder
from fusionhub.media.intercom.room import IntercomRoom
from fusionhub.media.intercom.session import IntercomSession, Participant
from fusionhub.media.rtptap import check_aiortc
from fusionhub.signaling.floor import PRIORITY_MAX, FloorControl
from fusionhub.signaling.intercom import floor_json

log = logging.getLogger(__name__)

PACKETS_PER_S = 100  # 10 ms Opus frames at most: bounds a burst's recording


class Intercom:
    """Owns the rooms and their sessions; `start()` before use, `stop()` at the end (idempotent)."""

    # what rooms and sessions are made of (the benchmark swaps in aiortc's decode/encode path)
    room_class: type[IntercomRoom] = IntercomRoom
    session_class: type[IntercomSession] = IntercomSession

    def __init__(
        self,
        config: IntercomConfig,
        *,
        rtc: Callable[[], RTCConfiguration],
        data_dir: Path,
        on_burst: BurstCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._rtc = rtc
        self._data_dir = Path(data_dir)
        self._on_burst = on_burst
        self._clock = clock
        self._rooms: dict[str, IntercomRoom] = {}
        self._sessions: dict[str, IntercomSession] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._started = False
        self._stopped = False
        self.refused_full = 0

    async def start(self) -> None:
        """Check that aiortc still has the receive hook the forwarding relies on."""
        check_aiortc()
        self._started = True

    def _running(self) -> None:
        if not self._started or self._stopped:
            raise MediaError("the intercom is not running")

    def _new_room(self, room_id: str, case_id: int | None) -> IntercomRoom:
        recorder = None
        if self._config.record and self._on_burst is not None:
            floor = self._config.floor
            longest = floor.max_talk_s + max(floor.grace_s, floor.preempt_grace_s) + 1.0
            recorder = BurstRecorder(
                room_id,
                case_id=case_id,
                data_dir=self._data_dir,
                subdir=self._config.recordings_dir,
                max_packets=int(longest * PACKETS_PER_S),
                on_burst=self._on_burst,
                clock=self._clock,
            )
        room = self.room_class(room_id, self._config, recorder=recorder, clock=self._clock)
        room.start()
        return room

    async def join(
        self, room_id: str, participant: Participant, offer_sdp: str, *, case_id: int | None = None
    ) -> tuple[str, str]:
        """Answer a participant's offer: (answer SDP, session id).

        The same user joining the same room again replaces its older session. Raises GatewayFull
        (limits), InvalidOffer, CodecUnsupported, TimeoutError (ICE gathering too slow).
        """
        self._running()
        if not 0 <= participant.priority <= PRIORITY_MAX:
            raise ValueError(f"priority {participant.priority} is outside 0–{PRIORITY_MAX}")
        room = self._rooms.get(room_id)
        if room is None and len(self._rooms) >= self._config.max_rooms:
            self.refused_full += 1
            raise GatewayFull(f"the hub already runs {self._config.max_rooms} intercom rooms; try again later")
        if room is not None and len(room.sessions) >= self._config.max_participants:
            self.refused_full += 1
            raise GatewayFull(f"room {room_id} already has {self._config.max_participants} participants")
        if len(self._sessions) >= self._config.max_sessions:
            self.refused_full += 1
            raise GatewayFull(f"the hub already serves {self._config.max_sessions} intercom sessions")
        for old in [s for s in self._sessions.values() if s.room_id == room_id and s.participant.user_id == participant.user_id]:
            await old.close()  # one session per user and room: a reload replaces the old one
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = self._new_room(room_id, case_id)
        session_id = secrets.token_urlsafe(16)
        session = self.session_class(
            session_id,
            room_id,
            participant,
            self._config,
            self._rtc(),
            on_rtp=room.on_rtp,
            on_open=room.on_open,
            on_message=room.on_message,
            on_closed=self._forget,
        )
        self._sessions[session_id] = session
        room.add(session)
        try:
            answer = await session.answer(offer_sdp)
        except BaseException:
            await session.close()
            raise
        log.info("room %s: %s joined as %s (%d there)", room_id, participant.name, session_id[:6], len(room.sessions))
        return answer, session_id

    def _forget(self, session: IntercomSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
        room = self._rooms.get(session.room_id)
        if room is None:
            return
        room.remove(session)
        log.info("room %s: %s left (%d there)", room.room_id, session.participant.name, len(room.sessions))
        if not room.sessions:
            del self._rooms[room.room_id]
            task = asyncio.create_task(room.close(), name=f"ptt-room-{room.room_id}-close")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def session(self, session_id: str) -> IntercomSession:
        """One open session (raises UnknownSession)."""
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession("no such intercom session") from None

    async def leave(self, session_id: str) -> None:
        """End a session (raises UnknownSession)."""
        await self.session(session_id).close()

    def room(self, room_id: str) -> IntercomRoom | None:
        """A room with participants, or None."""
        return self._rooms.get(room_id)

    def room_state(self, room_id: str) -> dict[str, Any]:
        """Participants and floor of a room (an empty, idle room when nobody is in it)."""
        room = self._rooms.get(room_id)
        if room is not None:
            return room.state()
        idle = FloorControl(self._config.floor).snapshot()
        return {"participants": [], "floor": floor_json(idle, lambda sid: {"id": sid}, to_epoch=lambda t: t)}

    def revoke(self, room_id: str) -> None:
        """Take the floor back in a room (an operator's override); nothing when nobody talks."""
        room = self._rooms.get(room_id)
        if room is not None:
            room.revoke()

    async def stop(self) -> None:
        """Close every session, then every room (their recordings are written). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[BaseException] = []
        for session in list(self._sessions.values()):
            try:
                await session.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors.append(exc)
                log.exception("error closing intercom session %s", session.id[:6])
        for room_id, room in list(self._rooms.items()):
            del self._rooms[room_id]
            await room.close()
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        if errors:
            raise MediaError(f"{len(errors)} error(s) while stopping the intercom") from errors[0]

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring."""
        return {
            "rooms": [r.stats() for r in self._rooms.values()],
            "sessions": len(self._sessions),
            "refused_full": self.refused_full,
        }
