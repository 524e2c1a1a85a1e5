"""The push-to-talk floor state machine, driven by a fake clock (no tasks, no sleeping)."""

from __future__ import annotations

import pytest

from fusionhub.signaling.floor import (
    Denied,
    Dequeued,
    Ended,
    FloorConfig,
    FloorControl,
    FloorPhase,
    Granted,
    InvalidClaim,
    Queued,
    Revoked,
)

FIELD, DUTY, COMMANDER = 100, 150, 200


def floor(**overrides: object) -> FloorControl:
    config = FloorConfig.model_validate({"no_media_s": 4.0, "max_talk_s": 30.0, "grace_s": 3.0, **overrides})
    return FloorControl(config)


def talk(fc: FloorControl, who: str, start: float, end: float, step: float = 0.02) -> None:
    """`who` sends a packet every `step` seconds from start to end; each must be forwarded."""
    t = start
    while t <= end:
        assert fc.on_media(who, t)
        t += step


def test_idle_request_is_granted_and_only_the_holder_is_forwarded() -> None:
    fc = floor()
    assert fc.phase is FloorPhase.IDLE and fc.holder is None
    assert fc.request("a", priority=FIELD, now=0.0) == [Granted("a", FIELD, False)]
    assert fc.phase is FloorPhase.TAKEN and fc.holder == "a"
    assert fc.on_media("a", 0.1)
    assert not fc.on_media("b", 0.1)
    snap = fc.snapshot()
    assert snap.holder is not None and snap.holder.participant == "a" and snap.granted_at == 0.0


def test_release_frees_the_floor_and_reports_how_long_it_was_held() -> None:
    fc = floor()
    fc.request("a", priority=FIELD, now=0.0)
    talk(fc, "a", 0.0, 2.0)
    assert fc.release("a", 2.5) == [Ended("a", "released", 2.5)]
    assert fc.phase is FloorPhase.IDLE
    assert not fc.on_media("a", 2.6)  # late packets of a released holder are dropped
    assert fc.release("a", 3.0) == []  # twice: nothing happens


def test_busy_floor_queues_equal_priority_with_positions() -> None:
    fc = floor()
    fc.request("a", priority=FIELD, now=0.0)
    assert fc.request("b", priority=FIELD, now=0.1) == [Queued("b", 1)]
    assert fc.request("c", priority=FIELD, now=0.2) == [Queued("c", 2)]
    assert fc.request("c", priority=FIELD, now=0.3) == [Queued("c", 2)]  # asking again changes nothing
    assert fc.position("c") == 2
    # a duty officer (higher, but not above... here it IS above field): use an equal rank to queue
    events = fc.release("a", 1.0)
    assert events == [Ended("a", "released", 1.0), Queued("c", 1), Granted("b", FIELD, False)]
    assert fc.holder == "b" and fc.position("c") == 1


def test_queue_orders_by_rank_then_arrival() -> None:
    fc = floor()
    fc.request("boss", priority=COMMANDER, now=0.0)
    assert fc.request("f1", priority=FIELD, now=0.1) == [Queued("f1", 1)]
    # a duty officer ranks above the waiting field member but below the holder: queued ahead
    assert fc.request("d", priority=DUTY, now=0.2) == [Queued("d", 1), Queued("f1", 2)]
    assert [c.participant for c in fc.snapshot().queue] == ["d", "f1"]


def test_waiting_participant_cancels_and_the_others_move_up() -> None:
    fc = floor()
    fc.request("a", priority=FIELD, now=0.0)
    fc.request("b", priority=FIELD, now=0.1)
    fc.request("c", priority=FIELD, now=0.2)
    assert fc.release("b", 0.5) == [Dequeued("b", "cancelled"), Queued("c", 1)]
    assert fc.holder == "a"


def test_queueing_off_denies_a_busy_floor() -> None:
    fc = floor(queue_size=0)
    fc.request("a", priority=FIELD, now=0.0)
    assert fc.request("b", priority=FIELD, now=0.1) == [Denied("b", "busy")]
    assert fc.snapshot().queue == ()


def test_full_queue_denies_lower_and_bumps_for_higher() -> None:
    fc = floor(queue_size=2)
    fc.request("boss", priority=250, now=0.0)
    fc.request("q1", priority=FIELD, now=0.1)
    fc.request("q2", priority=FIELD, now=0.2)
    assert fc.request("q3", priority=FIELD, now=0.3) == [Denied("q3", "queue_full")]
    events = fc.request("d", priority=DUTY, now=0.4)
    assert events == [Dequeued("q2", "queue_full"), Queued("d", 1), Queued("q1", 2)]


def test_commander_preempts_field_at_once() -> None:
    fc = floor()
    fc.request("f", priority=FIELD, now=0.0)
    talk(fc, "f", 0.0, 1.0)
    events = fc.request("cmd", priority=COMMANDER, now=1.2)
    assert events == [Revoked("f", "preempted", 0.0), Ended("f", "preempted", 1.2), Granted("cmd", COMMANDER, False)]
    assert not fc.on_media("f", 1.21)  # the pre-empted one is cut off immediately
    assert fc.on_media("cmd", 1.21)
    # the pre-empted field member is not silently queued
    assert fc.position("f") is None


def test_lower_priority_never_preempts() -> None:
    fc = floor()
    fc.request("cmd", priority=COMMANDER, now=0.0)
    assert fc.request("f", priority=FIELD, now=0.1) == [Queued("f", 1)]
    assert fc.holder == "cmd"


def test_emergency_beats_any_priority_and_only_a_higher_emergency_beats_it() -> None:
    fc = floor()
    fc.request("cmd", priority=255, now=0.0)
    events = fc.request("f", priority=FIELD, emergency=True, now=0.5)
    assert events[-1] == Granted("f", FIELD, True)
    assert Revoked("cmd", "preempted", 0.0) in events
    # the commander cannot take it back without an emergency of its own
    assert fc.request("cmd", priority=255, now=0.6) == [Queued("cmd", 1)]
    # a second emergency of equal priority waits (ahead of non-emergencies)
    assert fc.request("f2", priority=FIELD, emergency=True, now=0.7) == [Queued("f2", 1), Queued("cmd", 2)]
    events = fc.request("cmd", priority=255, emergency=True, now=0.8)
    assert events[-1] == Granted("cmd", 255, True)
    assert fc.snapshot().holder is not None and fc.snapshot().holder.emergency  # type: ignore[union-attr]


def test_waiting_request_raised_to_emergency_preempts() -> None:
    fc = floor()
    fc.request("cmd", priority=COMMANDER, now=0.0)
    fc.request("f", priority=FIELD, now=0.1)
    events = fc.request("f", priority=FIELD, emergency=True, now=0.2)
    assert events[-1] == Granted("f", FIELD, True)
    assert fc.position("f") is None


def test_no_media_timer_takes_the_floor_back_and_grants_the_next() -> None:
    fc = floor(no_media_s=4.0)
    fc.request("a", priority=FIELD, now=0.0)
    fc.request("b", priority=FIELD, now=0.5)
    assert fc.next_deadline() == 4.0  # T1 from the grant: a never sent anything
    assert fc.tick(3.99) == []
    events = fc.tick(4.0)
    assert events == [Revoked("a", "no_media", 0.0), Ended("a", "no_media", 4.0), Granted("b", FIELD, False)]
    # b's timers start at its own grant
    assert fc.next_deadline() == 8.0


def test_no_media_timer_counts_from_the_last_packet() -> None:
    fc = floor(no_media_s=4.0)
    fc.request("a", priority=FIELD, now=0.0)
    talk(fc, "a", 0.0, 5.0)
    last = fc.snapshot()
    assert last.holder is not None
    deadline = fc.next_deadline()
    assert deadline is not None and 8.9 < deadline < 9.01
    assert fc.tick(8.5) == []
    assert fc.tick(9.05)[0] == Revoked("a", "no_media", 0.0)
    assert fc.phase is FloorPhase.IDLE


def test_max_talk_revokes_with_grace_then_ends() -> None:
    fc = floor(no_media_s=4.0, max_talk_s=10.0, grace_s=2.0)
    fc.request("a", priority=FIELD, now=0.0)
    fc.request("b", priority=FIELD, now=1.0)
    talk(fc, "a", 0.0, 10.0)
    assert fc.tick(10.0) == [Revoked("a", "max_talk", 2.0)]
    assert fc.phase is FloorPhase.REVOKING
    assert fc.snapshot().revoke_reason == "max_talk"
    assert fc.on_media("a", 11.0)  # still heard during the grace
    assert fc.next_deadline() == 12.0
    assert fc.tick(11.9) == []
    assert fc.tick(12.0) == [Ended("a", "max_talk", 12.0), Granted("b", FIELD, False)]
    assert not fc.on_media("a", 12.01)


def test_holder_releasing_during_grace_ends_early() -> None:
    fc = floor(max_talk_s=5.0, grace_s=3.0)
    fc.request("a", priority=FIELD, now=0.0)
    talk(fc, "a", 0.0, 5.0)
    fc.tick(5.0)
    assert fc.release("a", 6.0) == [Ended("a", "released", 6.0)]
    assert fc.phase is FloorPhase.IDLE and fc.next_deadline() is None


def test_zero_grace_ends_at_max_talk() -> None:
    fc = floor(max_talk_s=5.0, grace_s=0.0)
    fc.request("a", priority=FIELD, now=0.0)
    talk(fc, "a", 0.0, 5.0)
    assert fc.tick(5.0) == [Revoked("a", "max_talk", 0.0), Ended("a", "max_talk", 5.0)]


def test_preemption_with_grace_queues_the_preemptor_first() -> None:
    fc = floor(preempt_grace_s=1.0)
    fc.request("f", priority=FIELD, now=0.0)
    fc.request("f2", priority=FIELD, now=0.1)
    talk(fc, "f", 0.0, 0.5)
    events = fc.request("cmd", priority=COMMANDER, now=0.5)
    assert events == [Queued("cmd", 1), Queued("f2", 2), Revoked("f", "preempted", 1.0)]
    assert fc.on_media("f", 0.9)
    assert fc.tick(1.5) == [Ended("f", "preempted", 1.5), Queued("f2", 1), Granted("cmd", COMMANDER, False)]


def test_higher_request_during_a_max_talk_grace_preempts_at_once() -> None:
    fc = floor(max_talk_s=2.0, grace_s=3.0)
    fc.request("f", priority=FIELD, now=0.0)
    talk(fc, "f", 0.0, 2.0)
    fc.tick(2.0)
    events = fc.request("cmd", priority=COMMANDER, now=2.5)
    assert events[-1] == Granted("cmd", COMMANDER, False)
    assert Ended("f", "preempted", 2.5) in events


def test_leaving_holder_hands_over_and_leaving_waiter_is_dequeued() -> None:
    fc = floor()
    fc.request("a", priority=FIELD, now=0.0)
    fc.request("b", priority=FIELD, now=0.1)
    fc.request("c", priority=FIELD, now=0.2)
    assert fc.leave("c", 0.3) == [Dequeued("c", "left")]
    assert fc.leave("a", 0.4) == [Ended("a", "left", 0.4), Granted("b", FIELD, False)]


def test_operator_revoke_and_idempotent_holder_request() -> None:
    fc = floor()
    fc.request("a", priority=FIELD, now=0.0)
    assert fc.request("a", priority=FIELD, now=0.1) == [Granted("a", FIELD, False)]
    assert fc.revoke(0.5) == [Ended("a", "preempted", 0.5)]
    assert fc.revoke(0.6) == []


def test_every_change_bumps_the_snapshot_version() -> None:
    fc = floor()
    versions = [fc.snapshot().version]
    fc.request("a", priority=FIELD, now=0.0)
    versions.append(fc.snapshot().version)
    fc.request("b", priority=FIELD, now=0.1)
    versions.append(fc.snapshot().version)
    fc.on_media("a", 0.2)  # media is not a state change
    versions.append(fc.snapshot().version)
    fc.release("a", 0.3)
    versions.append(fc.snapshot().version)
    assert versions[0] < versions[1] < versions[2] == versions[3] < versions[4]


@pytest.mark.parametrize("priority", [-1, 256])
def test_priority_outside_range_is_refused(priority: int) -> None:
    with pytest.raises(InvalidClaim):
        floor().request("a", priority=priority, now=0.0)


def test_config_refuses_unknown_keys_and_bad_bounds() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        FloorConfig.model_validate({"max_talk": 3})
    with pytest.raises(ValidationError):
        FloorConfig.model_validate({"no_media_s": 0})
