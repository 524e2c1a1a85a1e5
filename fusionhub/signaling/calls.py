"""Live video calls from cases: who is rung, who answered, when it ended (state only, no media).

A call rings its callees (one field member, or every member of a team) until one answers,
all decline, the caller cancels, or the ring times out. Once answered it is a two-party call
(caller and the one who answered) until either side hangs up. Every change goes to
`on_change` as a `CallChanged` (the console publishes it on the bus: the ring reaches the field
pages over the websocket, dispatch writes the case timeline). Media (each side's WHIP publisher,
WHEP viewing of the other) is the console's business; `on_end` lets it close that media.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fusionhub.signaling.errors import SignalingError
from fusionhub.signaling.messages import CallChanged, CallParticipant

log = logging.getLogger(__name__)


class CallError(SignalingError):
    """A call action that does not fit the call's state or the user's part in it."""


class UnknownCall(CallError, LookupError):
    """No live call with that id for this user."""


class CallBusy(CallError):
    """The callee (or the caller) is already in a call."""


@dataclass
class Party:
    """A user in a call, as the registry knows them."""

    user_id: int
    name: str


@dataclass
class Call:
    """One live call."""

    call_id: str
    case_id: int
    case_title: str
    region: str
    caller: Party
    ringing: dict[int, Party]
    team_id: int | None
    created_at: float
    state: str = "ringing"
    callee: Party | None = None
    started_at: float | None = None
    started_mono: float | None = None  # the answer on the monotonic clock
    declined: set[int] = field(default_factory=set)
    camera_ids: list[int] = field(default_factory=list)
    terminal_ids: list[int] = field(default_factory=list)
    rung: list[int] = field(default_factory=list)  # everyone ever rung: they learn when the ring stops

    def party_ids(self) -> set[int]:
        """The users in the call now (the caller, the one who answered)."""
        return {self.caller.user_id, *([self.callee.user_id] if self.callee else [])}

    def peer_of(self, user_id: int) -> Party | None:
        """The other party of `user_id` in an answered call."""
        if self.callee is None:
            return None
        if user_id == self.caller.user_id:
            return self.callee
        return self.caller if user_id == self.callee.user_id else None

    def message(self, state: str, *, reason: str | None = None, at: float | None = None) -> CallChanged:
        """This call as a bus message."""
        parts = [CallParticipant(user_id=self.caller.user_id, name=self.caller.name, role="caller")]
        if self.callee is not None:
            parts.append(CallParticipant(user_id=self.callee.user_id, name=self.callee.name, role="callee"))
        return CallChanged(
            call_id=self.call_id, case_id=self.case_id, case_title=self.case_title[:256], region=self.region,
            caller_id=self.caller.user_id, caller_name=self.caller.name, state=state,  # type: ignore[arg-type]
            ring_user_ids=list(self.rung), team_id=self.team_id,
            participants=parts, camera_ids=list(self.camera_ids), terminal_ids=list(self.terminal_ids), end_reason=reason, started_at=self.started_at,
            at=at if at is not None else self.now(),
        )

    def now(self) -> float:
        """Epoch seconds now; for an answered call, its answer plus the time since on the monotonic
        clock, so that a step of the wall clock (a VM's clock set at resume, NTP) never makes the
        call look longer or shorter than it was (its recordings are measured by their media)."""
        if self.started_at is None or self.started_mono is None:
            return time.time()
        return self.started_at + max(0.0, time.monotonic() - self.started_mono)

    def public(self) -> dict[str, object]:
        """As the API shows it."""
        msg = self.message(self.state)
        return {**msg.model_dump(mode="json"), "created_at": self.created_at}


Notify = Callable[[CallChanged], Awaitable[None]]


class CallRegistry:
    """The live calls; owns one ring timer per ringing call. stop() ends every call ("closed")."""

    def __init__(self, *, ring_timeout_s: float, max_calls: int, on_change: Notify, on_end: Callable[[Call], Awaitable[None]]) -> None:
        self._ring_timeout_s = ring_timeout_s
        self._max_calls = max_calls
        self._on_change = on_change
        self._on_end = on_end
        self._calls: dict[str, Call] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._stopped = False

    def _busy(self, user_id: int) -> bool:
        return any(user_id in c.party_ids() for c in self._calls.values())

    async def place(
        self, *, case_id: int, case_title: str, region: str, caller: Party, callees: list[Party], team_id: int | None
    ) -> Call:
        """Ring `callees` (CallBusy when the caller is in a call or every callee is)."""
        if self._stopped:
            raise CallError("calls are not taken now")
        if len(self._calls) >= self._max_calls:
            raise CallBusy(f"the hub already carries {self._max_calls} calls; try again later")
        if self._busy(caller.user_id):
            raise CallBusy("you are already in a call; hang up first")
        free = {p.user_id: p for p in callees if p.user_id != caller.user_id and not self._busy(p.user_id)}
        if not free:
            raise CallBusy("nobody to call is free: they are in another call")
        call = Call(
            call_id=secrets.token_hex(12), case_id=case_id, case_title=case_title, region=region, caller=caller,
            ringing=free, team_id=team_id, created_at=time.time(), rung=sorted(free),
        )
        self._calls[call.call_id] = call
        self._timers[call.call_id] = asyncio.create_task(self._ring_timeout(call), name=f"call-{call.call_id[:6]}-ring")
        log.info("call %s: case %s, %s rings %s", call.call_id[:6], case_id, caller.user_id, sorted(free))
        await self._on_change(call.message("ringing"))
        return call

    async def _ring_timeout(self, call: Call) -> None:
        await asyncio.sleep(self._ring_timeout_s)
        self._timers.pop(call.call_id, None)
        if call.state == "ringing":
            await self._end(call, "missed")

    def get(self, call_id: str, user_id: int | None = None) -> Call:
        """A live call; with `user_id`, only if that user is a party or is being rung."""
        call = self._calls.get(call_id)
        if call is None or (user_id is not None and user_id not in call.party_ids() and user_id not in call.ringing):
            raise UnknownCall("no such call")
        return call

    def list_for(self, user_id: int) -> list[Call]:
        """The live calls this user is in or is being rung for."""
        return [c for c in self._calls.values() if user_id in c.party_ids() or (c.state == "ringing" and user_id in c.ringing)]

    def with_terminal(self, terminal_id: int) -> list[Call]:
        """The active calls a terminal was added to."""
        return [c for c in self._calls.values() if c.state == "active" and terminal_id in c.terminal_ids]

    async def answer(self, call_id: str, user: Party) -> Call:
        """A rung callee answers: the call becomes active with them (the others stop ringing)."""
        call = self.get(call_id, user.user_id)
        if call.state != "ringing" or user.user_id not in call.ringing:
            raise CallError("this call is not ringing for you")
        if any(user.user_id in c.party_ids() for c in self._calls.values() if c is not call):
            raise CallBusy("you are already in a call; hang up first")
        self._cancel_timer(call_id)
        call.state, call.callee, call.started_at, call.started_mono = "active", user, time.time(), time.monotonic()
        call.ringing = {}
        log.info("call %s: answered by %s", call_id[:6], user.user_id)
        await self._on_change(call.message("active"))
        return call

    async def decline(self, call_id: str, user_id: int) -> Call:
        """A rung callee declines; when every callee declined the call ends ("declined")."""
        call = self.get(call_id, user_id)
        if call.state != "ringing" or user_id not in call.ringing:
            raise CallError("this call is not ringing for you")
        call.declined.add(user_id)
        del call.ringing[user_id]
        if not call.ringing:
            await self._end(call, "declined")
        else:
            await self._on_change(call.message("ringing"))
        return call

    async def hang_up(self, call_id: str, user_id: int, reason: str = "hangup") -> Call:
        """A party ends the call (the caller cancelling a ringing call: "cancelled")."""
        call = self.get(call_id, user_id)
        if user_id not in call.party_ids():
            raise CallError("you are not in this call; decline it instead")
        await self._end(call, "cancelled" if call.state == "ringing" else reason)
        return call

    async def add_feed(self, call_id: str, user_id: int, kind: str, feed_id: int, max_feeds: int = 4) -> Call:
        """Show a camera or a conference terminal (`kind`) beside the call; the viewing is WHEP."""
        call = self.get(call_id, user_id)
        if user_id != call.caller.user_id:
            raise CallError("only the caller adds feeds")
        feeds = call.camera_ids if kind == "camera" else call.terminal_ids
        if feed_id not in feeds:
            if len(feeds) >= max_feeds:
                raise CallError(f"at most {max_feeds} {kind} feeds in a call")
            feeds.append(feed_id)
            await self._on_change(call.message(call.state))
        return call

    def _cancel_timer(self, call_id: str) -> None:
        timer = self._timers.pop(call_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _end(self, call: Call, reason: str) -> None:
        if self._calls.pop(call.call_id, None) is None:
            return
        self._cancel_timer(call.call_id)
        call.state = "ended"
        log.info("call %s: ended (%s)", call.call_id[:6], reason)
        try:
            await self._on_end(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: closing its media failed", call.call_id[:6])
        await self._on_change(call.message("ended", reason=reason))

    async def end_for_user(self, user_id: int, reason: str) -> None:
        """End the calls a user is a party of (their media went away)."""
        for call in [c for c in self._calls.values() if user_id in c.party_ids()]:
            await self._end(call, reason)

    async def stop(self) -> None:
        """End every call ("closed") and cancel the ring timers (safe to call twice)."""
        self._stopped = True
        for call in list(self._calls.values()):
            try:
                await self._end(call, "closed")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call %s: error while closing", call.call_id[:6])
        for timer in list(self._timers.values()):
            timer.cancel()
        await asyncio.gather(*self._timers.values(), return_exceptions=True)
        self._timers.clear()

    def __len__(self) -> int:
        return len(self._calls)
