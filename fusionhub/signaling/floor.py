"""Floor control of a push-to-talk room, modelled on 3GPP MCPTT (TS 24.380): pure, clock injected.

Who may talk is decided here and nowhere else; the media side asks `on_media()` for every packet
and forwards only the holder's. The class never reads a clock or starts a task: every call takes
`now` (seconds, any monotonic clock) and returns the events it caused, and the owner calls
`tick(now)` at `next_deadline()`. That keeps every timer unit-testable with a fake clock.

Server states (TS 24.380 §6.3.5 names in brackets):
- IDLE ("G: Floor Idle"): nobody talks; a request is granted at once.
- TAKEN ("G: Floor Taken"): one holder; its media is forwarded.
- REVOKING ("G: pending Floor Revoke"): the holder was told to stop; its media is still forwarded
  until it releases or the grace timer runs out, so a sentence is not cut mid-word.

Timers: T1 "end of RTP media" (`no_media_s`: the holder sent nothing for that long → the floor
is taken back at once), T2 "stop talking" (`max_talk_s` → revoke with grace), T3 "stop talking
grace" (`grace_s`). Pre-emption revokes with `preempt_grace_s` (0 by default: a commander's
override is heard at once).

Priority: 0–255 per request, and an `emergency` flag that beats every non-emergency claim. A
request that ranks strictly above the holder pre-empts; an equal or lower one is queued by rank,
then arrival (its position is told and kept up to date), or denied when queueing is off/full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from fusionhub.signaling.errors import SignalingError

PRIORITY_MIN, PRIORITY_MAX = 0, 255


class InvalidClaim(SignalingError, ValueError):
    """A floor request with a priority outside 0–255 or an empty participant id."""


class FloorConfig(BaseModel):
    """The floor timers and queue of every push-to-talk room."""

    model_config = ConfigDict(extra="forbid")

    no_media_s: float = Field(
        4.0, gt=0, le=60, title="T1 end of media", description="the holder sent no audio this long: the floor is taken back"
    )
    max_talk_s: float = Field(
        30.0, gt=0, le=600, title="T2 maximum talk", description="longest a holder may keep the floor before it is revoked"
    )
    grace_s: float = Field(
        3.0, ge=0, le=30, title="T3 grace", description="after a max-talk revoke, the holder is still heard this long"
    )
    preempt_grace_s: float = Field(
        0.0,
        ge=0,
        le=30,
        title="Pre-emption grace",
        description="a pre-empted holder is still heard this long (0: the higher priority is heard at once)",
    )
    queue_size: int = Field(
        8, ge=0, le=256, description="requests waiting for the floor; 0 turns queueing off (busy → denied)"
    )


class FloorPhase(StrEnum):
    """The server's floor state."""

    IDLE = "idle"
    TAKEN = "taken"
    REVOKING = "revoking"


@dataclass(frozen=True, slots=True)
class Claim:
    """One participant's request for the floor."""

    participant: str
    priority: int
    emergency: bool
    requested_at: float

    @property
    def rank(self) -> tuple[bool, int]:
        """What pre-emption compares: emergency first, then priority."""
        return (self.emergency, self.priority)


@dataclass(frozen=True, slots=True)
class Granted:
    """The participant holds the floor now: it may send."""

    participant: str
    priority: int
    emergency: bool


@dataclass(frozen=True, slots=True)
class Denied:
    """The request was refused: `busy` (queueing off) or `queue_full`."""

    participant: str
    reason: str


@dataclass(frozen=True, slots=True)
class Queued:
    """The request waits; `position` is 1 for the next in line (re-sent when it changes)."""

    participant: str
    position: int


@dataclass(frozen=True, slots=True)
class Revoked:
    """The holder must stop: `preempted`, `max_talk` or `no_media`; heard for `grace_s` more."""

    participant: str
    reason: str
    grace_s: float


@dataclass(frozen=True, slots=True)
class Ended:
    """The participant no longer holds the floor (`released`, `preempted`, `max_talk`, `no_media`, `left`)."""

    participant: str
    reason: str
    held_s: float


@dataclass(frozen=True, slots=True)
class Dequeued:
    """A waiting request left the queue without the floor (`cancelled`, `left`, `queue_full`)."""

    participant: str
    reason: str


FloorEvent = Granted | Denied | Queued | Revoked | Ended | Dequeued


@dataclass(frozen=True, slots=True)
class FloorSnapshot:
    """Who talks and who waits; `version` grows with every change (late joiners get the latest)."""

    phase: FloorPhase
    holder: Claim | None
    granted_at: float | None
    revoke_reason: str | None
    queue: tuple[Claim, ...]
    version: int


@dataclass(slots=True)
class _Hold:
    claim: Claim
    granted_at: float
    last_media_at: float | None = None
    revoked_at: float | None = None
    revoke_reason: str | None = None
    revoke_grace_s: float = 0.0


@dataclass(slots=True)
class _Queue:
    entries: list[Claim] = field(default_factory=list)
    told: dict[str, int] = field(default_factory=dict)  # the position each waiting one was last told


def _queue_key(claim: Claim) -> tuple[bool, int, float]:
    return (not claim.emergency, -claim.priority, claim.requested_at)


class FloorControl:
    """One room's floor: call request/release/leave/on_media/tick with `now`; act on the events."""

    def __init__(self, config: FloorConfig) -> None:
        self._config = config
        self._hold: _Hold | None = None
        self._queue = _Queue()
        self._version = 0

    # -- reading ----------------------------------------------------------------------------------

    @property
    def phase(self) -> FloorPhase:
        """IDLE, TAKEN or REVOKING."""
        if self._hold is None:
            return FloorPhase.IDLE
        return FloorPhase.TAKEN if self._hold.revoked_at is None else FloorPhase.REVOKING

    @property
    def holder(self) -> str | None:
        """The participant whose media is forwarded, if any."""
        return self._hold.claim.participant if self._hold is not None else None

    def position(self, participant: str) -> int | None:
        """1-based queue position, None when not waiting."""
        for i, claim in enumerate(self._queue.entries, start=1):
            if claim.participant == participant:
                return i
        return None

    def snapshot(self) -> FloorSnapshot:
        """The floor as everyone (late joiners too) should see it."""
        hold = self._hold
        return FloorSnapshot(
            phase=self.phase,
            holder=hold.claim if hold else None,
            granted_at=hold.granted_at if hold else None,
            revoke_reason=hold.revoke_reason if hold else None,
            queue=tuple(self._queue.entries),
            version=self._version,
        )

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next (None: nothing pending)."""
        hold = self._hold
        if hold is None:
            return None
        if hold.revoked_at is not None:
            return hold.revoked_at + hold.revoke_grace_s
        last = hold.last_media_at if hold.last_media_at is not None else hold.granted_at
        return min(last + self._config.no_media_s, hold.granted_at + self._config.max_talk_s)

    # -- media --------------------------------------------------------------------------------------

    def on_media(self, participant: str, now: float) -> bool:
        """A media packet arrived from `participant`: True when it is to be forwarded (the holder's)."""
        hold = self._hold
        if hold is None or hold.claim.participant != participant:
            return False
        hold.last_media_at = now
        return True

    # -- requests -----------------------------------------------------------------------------------

    def request(self, participant: str, *, priority: int, emergency: bool = False, now: float) -> list[FloorEvent]:
        """Ask for the floor (raises InvalidClaim for a priority outside 0–255)."""
        if not participant:
            raise InvalidClaim("a floor request needs a participant id")
        if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise InvalidClaim(f"priority {priority} is outside {PRIORITY_MIN}–{PRIORITY_MAX}")
        claim = Claim(participant, priority, emergency, now)
        hold = self._hold
        if hold is not None and hold.claim.participant == participant:
            return [Granted(participant, hold.claim.priority, hold.claim.emergency)]  # a repeated request
        waiting = self.position(participant)
        if waiting is not None:
            old = self._queue.entries[waiting - 1]
            if claim.rank <= old.rank:
                return [Queued(participant, waiting)]
            # asked again with a higher rank (e.g. now as an emergency): take it as a new request
            del self._queue.entries[waiting - 1]
            self._queue.told.pop(participant, None)
        if hold is None:
            return self._grant(claim, now)
        if claim.rank > hold.claim.rank:
            return self._preempt(claim, now)
        return self._enqueue(claim)

    def release(self, participant: str, now: float) -> list[FloorEvent]:
        """The participant lets go (stops talking, or gives up waiting); unknown ones change nothing."""
        return self._remove(participant, now, ended="released", dequeued="cancelled")

    def leave(self, participant: str, now: float) -> list[FloorEvent]:
        """The participant left the room: its floor or queue place goes."""
        return self._remove(participant, now, ended="left", dequeued="left")

    def revoke(self, now: float, reason: str = "preempted") -> list[FloorEvent]:
        """Take the floor back from whoever holds it (an operator's override), without grace."""
        if self._hold is None:
            return []
        return self._end(reason, now)

    def tick(self, now: float) -> list[FloorEvent]:
        """Run the timers that are due at `now`."""
        events: list[FloorEvent] = []
        for _ in range(4):  # each pass can end one hold; the next one starts with fresh timers
            hold = self._hold
            if hold is None:
                break
            if hold.revoked_at is not None:
                if now < hold.revoked_at + hold.revoke_grace_s:
                    break
                events += self._end(hold.revoke_reason or "max_talk", now)
                continue
            last = hold.last_media_at if hold.last_media_at is not None else hold.granted_at
            if now >= last + self._config.no_media_s:
                events.append(Revoked(hold.claim.participant, "no_media", 0.0))
                events += self._end("no_media", now)
                continue
            if now >= hold.granted_at + self._config.max_talk_s:
                events += self._start_revoke("max_talk", self._config.grace_s, now)
                continue
            break
        return events

    # -- the machine ---------------------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1

    def _grant(self, claim: Claim, now: float) -> list[FloorEvent]:
        self._hold = _Hold(claim, granted_at=now)
        self._changed()
        return [Granted(claim.participant, claim.priority, claim.emergency)]

    def _preempt(self, claim: Claim, now: float) -> list[FloorEvent]:
        hold = self._hold
        assert hold is not None
        grace = self._config.preempt_grace_s
        if grace <= 0:
            events: list[FloorEvent] = [Revoked(hold.claim.participant, "preempted", 0.0)]
            events += self._end("preempted", now, successor=claim)
            return events
        # with a grace the pre-emptor waits at the head of the queue (its rank puts it there)
        events = self._enqueue(claim, force=True)
        if hold.revoked_at is None:
            events += self._start_revoke("preempted", grace, now)
        return events

    def _start_revoke(self, reason: str, grace: float, now: float) -> list[FloorEvent]:
        hold = self._hold
        assert hold is not None
        if grace <= 0:
            return [Revoked(hold.claim.participant, reason, 0.0), *self._end(reason, now)]
        hold.revoked_at = now
        hold.revoke_reason = reason
        hold.revoke_grace_s = grace
        self._changed()
        return [Revoked(hold.claim.participant, reason, grace)]

    def _end(self, reason: str, now: float, successor: Claim | None = None) -> list[FloorEvent]:
        """The holder stops holding; the successor (or the head of the queue) gets the floor."""
        hold = self._hold
        assert hold is not None
        self._hold = None
        self._changed()
        events: list[FloorEvent] = [Ended(hold.claim.participant, reason, max(0.0, now - hold.granted_at))]
        if successor is None and self._queue.entries:
            successor = self._queue.entries.pop(0)
            self._queue.told.pop(successor.participant, None)
            events += self._positions()
        if successor is not None:
            events += self._grant(successor, now)
        return events

    def _enqueue(self, claim: Claim, force: bool = False) -> list[FloorEvent]:
        entries = self._queue.entries
        limit = self._config.queue_size
        if limit == 0 and not force:
            return [Denied(claim.participant, "busy")]
        events: list[FloorEvent] = []
        if len(entries) >= max(limit, 1):
            last = max(entries, key=_queue_key)
            if not force and _queue_key(claim) >= _queue_key(last):
                return [Denied(claim.participant, "queue_full")]
            entries.remove(last)  # the lowest-ranked waiting request makes room for a higher one
            self._queue.told.pop(last.participant, None)
            events.append(Dequeued(last.participant, "queue_full"))
        entries.append(claim)
        entries.sort(key=_queue_key)
        self._changed()
        return events + self._positions()

    def _positions(self) -> list[FloorEvent]:
        """Queued events for every waiting participant whose position is new or changed."""
        events: list[FloorEvent] = []
        for i, claim in enumerate(self._queue.entries, start=1):
            if self._queue.told.get(claim.participant) != i:
                self._queue.told[claim.participant] = i
                events.append(Queued(claim.participant, i))
        return events

    def _remove(self, participant: str, now: float, *, ended: str, dequeued: str) -> list[FloorEvent]:
        if self._hold is not None and self._hold.claim.participant == participant:
            return self._end(ended, now)
        waiting = self.position(participant)
        if waiting is None:
            return []
        del self._queue.entries[waiting - 1]
        self._queue.told.pop(participant, None)
        self._changed()
        return [Dequeued(participant, dequeued), *self._positions()]
