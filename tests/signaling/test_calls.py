"""The call registry on its own: what a call's messages say about its time."""

from __future__ import annotations

import types

import pytest

from fusionhub.signaling import calls as calls_module
from fusionhub.signaling.calls import Call, CallRegistry, Party
from fusionhub.signaling.messages import CallChanged


async def test_an_answered_call_lasts_as_long_as_it_ran_when_the_wall_clock_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM's clock set at resume (or NTP) steps time.time() during a call: the ended message
    still says the call ran for the time it ran (its recordings are measured by their media)."""
    clock = {"wall": 1_800_000_000.0, "mono": 50.0}
    monkeypatch.setattr(calls_module, "time", types.SimpleNamespace(time=lambda: clock["wall"], monotonic=lambda: clock["mono"]))
    sent: list[CallChanged] = []

    async def notify(msg: CallChanged) -> None:
        sent.append(msg)

    async def on_end(call: Call) -> None:
        return None

    registry = CallRegistry(ring_timeout_s=30, max_calls=4, on_change=notify, on_end=on_end)
    call = await registry.place(case_id=1, case_title="Bus in the lane", region="city", caller=Party(2, "Commander Li"),
                                callees=[Party(4, "Field Zhao")], team_id=None)
    clock["wall"] += 3.0
    clock["mono"] += 3.0
    await registry.answer(call.call_id, Party(4, "Field Zhao"))
    clock["wall"] += 42.0 + 6.3  # 42 s of call; the wall clock also jumped 6.3 s
    clock["mono"] += 42.0
    await registry.hang_up(call.call_id, 2)
    await registry.stop()
    ended = [m for m in sent if m.state == "ended"]
    assert len(ended) == 1 and ended[0].started_at == 1_800_000_003.0
    assert ended[0].at - ended[0].started_at == pytest.approx(42.0)
