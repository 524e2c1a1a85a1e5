"""The workflow table as pure logic: every allowed and every refused transition."""

from __future__ import annotations

import pytest

from fusionhub.dispatch import workflow
from fusionhub.dispatch.errors import TransitionRefused

ALLOWED = {
    (None, "file"): "filed",
    ("filed", "dispatch"): "dispatched",
    ("dispatched", "acknowledge"): "handling",
    ("handling", "report"): "handled",
    ("handled", "verify"): "closed",
    ("handled", "reject"): "handling",
}
ALL_STATUSES = (None, *workflow.STATUSES)
REFUSED = [(s, a) for s in ALL_STATUSES for a in workflow.ACTIONS if (s, a) not in ALLOWED]


@pytest.mark.parametrize(("current", "action"), list(ALLOWED))
def test_allowed_transitions(current: str | None, action: str) -> None:
    assert workflow.next_status(current, action) == ALLOWED[(current, action)]


@pytest.mark.parametrize(("current", "action"), REFUSED)
def test_refused_transitions_name_the_current_status(current: str | None, action: str) -> None:
    with pytest.raises(TransitionRefused) as info:
        workflow.next_status(current, action)
    shown = current or "new"
    assert shown in str(info.value)
    assert info.value.code == "transition_refused"
    assert info.value.current == current
    # the message says what IS allowed from here
    for allowed in workflow.allowed_actions(current):
        assert allowed in str(info.value).split(";", 1)[1]


def test_the_table_is_exactly_the_skeleton_workflow() -> None:
    assert dict(workflow.TRANSITIONS) == ALLOWED
    assert len(REFUSED) == len(ALL_STATUSES) * len(workflow.ACTIONS) - len(ALLOWED)


def test_allowed_actions_per_status() -> None:
    assert workflow.allowed_actions("handled") == ("verify", "reject")
    assert workflow.allowed_actions("filed") == ("dispatch",)
    assert workflow.allowed_actions("closed") == ()


def test_closed_case_allows_nothing_and_says_so() -> None:
    with pytest.raises(TransitionRefused, match="closed case allows no further action"):
        workflow.next_status("closed", "reject")


def test_unknown_action_is_refused() -> None:
    with pytest.raises(TransitionRefused, match="'escalate' is not a workflow action.*filed"):
        workflow.next_status("filed", "escalate")


def test_the_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        workflow.TRANSITIONS[("closed", "reopen")] = "filed"  # type: ignore[index]
