from datetime import timedelta
from typing import Any

from rollout.controller.assess import PolicyView, policy_view
from rollout.controller.policies import policy_conditions
from tests.controller.objects import POLICY
from tests.engine.world import T0


def view(spec: dict[str, Any], generation: int = 2) -> PolicyView:
    return policy_view(
        {"metadata": {"name": "p", "namespace": "default", "generation": generation}, "spec": spec}
    )


def test_valid_policy_with_every_target_manageable() -> None:
    conds = {c.type: c for c in policy_conditions(view(POLICY), [], [], T0)}
    assert (conds["Valid"].status, conds["Valid"].reason, conds["Valid"].observed_generation) == (
        "True",
        "PolicyValid",
        2,
    )
    assert conds["TargetsManageable"].status == "True"


def test_invalid_policy_names_the_field_and_unmanageable_targets_are_listed() -> None:
    bad = view({"strategy": {"canary": {"steps": [{"weight": 10, "pause": {}}]}}})
    conds = {c.type: c for c in policy_conditions(bad, [], [("Service a", "splits traffic")], T0)}
    assert conds["Valid"].status == "False" and "spec.strategy.canary.steps[0]" in conds["Valid"].message
    assert (
        conds["TargetsManageable"].status == "False"
        and "Service a: splits traffic" in conds["TargetsManageable"].message
    )


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = policy_conditions(view(POLICY), [], [], T0)
    later = policy_conditions(view(POLICY, generation=3), first, [], T0 + timedelta(minutes=5))
    assert {c.type: c.last_transition_time for c in later} == {c.type: T0 for c in first}
    broken = policy_conditions(view({"strategy": {}}), later, [], T0 + timedelta(minutes=9))
    assert {c.type: c.last_transition_time for c in broken}["Valid"] == T0 + timedelta(minutes=9)
