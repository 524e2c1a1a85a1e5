"""The workflow table as pure logic: every allowed and every refused transition."""

from __future__ import annotations

import pytest

from fusionhub.dispatch import workflow
from fusionhub.dispatch.errors import TransitionRefused

SELF = ("progress", "request_extension", "approve_extension", "refuse_extension")
ALLOWED = {
    (None, "file"): "filed",
    (None, "intake"): "reported",
    ("reported", "file"): "filed",
    ("reported", "refuse"): "refused",
    ("filed", "dispatch"): "dispatched",
    ("filed", "suspend"): "suspended",
    ("dispatched", "acknowledge"): "handling",
    ("dispatched", "return"): "returned",
    ("dispatched", "suspend"): "suspended",
    **{("dispatched", a): "dispatched" for a in SELF},
    ("handling", "report"): "handled",
    ("handling", "return"): "returned",
    ("handling", "suspend"): "suspended",
    **{("handling", a): "handling" for a in SELF},
    ("handled", "verify"): "closed",
    ("handled", "reject"): "handling",
    ("returned", "dispatch"): "dispatched",
    ("returned", "suspend"): "suspended",
    ("closed", "evaluate"): "evaluated",
}
ALL_STATUSES = (None, *workflow.STATUSES)
REFUSED = [
    (s, a) for s in ALL_STATUSES for a in workflow.ACTIONS if (s, a) not in ALLOWED and (s, a) != ("suspended", "resume")
]


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


def test_the_table_is_exactly_the_documented_workflow() -> None:
    assert dict(workflow.TRANSITIONS) == {**ALLOWED, ("suspended", "resume"): workflow.PREVIOUS}
    assert len(REFUSED) == len(ALL_STATUSES) * len(workflow.ACTIONS) - len(ALLOWED) - 1


def test_allowed_actions_per_status() -> None:
    assert workflow.allowed_actions("handled") == ("verify", "reject")
    assert workflow.allowed_actions("filed") == ("dispatch", "suspend")
    assert workflow.allowed_actions("reported") == ("file", "refuse")
    assert workflow.allowed_actions("returned") == ("dispatch", "suspend")
    assert workflow.allowed_actions("closed") == ("evaluate",)
    for final in ("evaluated", "refused"):
        assert workflow.allowed_actions(final) == ()


@pytest.mark.parametrize("before", ["filed", "dispatched", "handling", "returned"])
def test_resume_goes_back_to_the_status_before_the_suspension(before: str) -> None:
    assert workflow.next_status(before, "suspend") == "suspended"
    assert workflow.next_status("suspended", "resume", previous=before) == before


@pytest.mark.parametrize("previous", [None, "suspended", "nonsense"])
def test_resume_without_a_known_previous_status_is_refused(previous: str | None) -> None:
    with pytest.raises(TransitionRefused, match="before the suspension") as info:
        workflow.next_status("suspended", "resume", previous=previous)
    assert info.value.current == "suspended" and info.value.allowed == ("resume",)


def test_supervisor_entries_are_not_user_actions() -> None:
    for action in workflow.SYSTEM_ACTIONS:
        with pytest.raises(TransitionRefused, match="not a workflow action"):
            workflow.next_status("handling", action)


def test_final_cases_allow_nothing_and_say_so() -> None:
    with pytest.raises(TransitionRefused, match="evaluated case allows no further action"):
        workflow.next_status("evaluated", "reject")
    with pytest.raises(TransitionRefused, match="refused case allows no further action"):
        workflow.next_status("refused", "file")


def test_unknown_action_is_refused() -> None:
    with pytest.raises(TransitionRefused, match="'escalate' is not a workflow action.*filed"):
        workflow.next_status("filed", "escalate")


def test_the_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        workflow.TRANSITIONS[("closed", "reopen")] = "filed"  # type: ignore[index]
