from typing import Any

import pytest

from rollout.api.rollout import TrafficEntry
from rollout.engine.plans import TrafficPlan
from rollout.knative.traffic import with_configuration
from rollout.kube.patch import apply_merge_patch, merge_patch_diff
from rollout.kube.status import status_patch
from rollout.kube.traffic import InvalidTraffic, KnativeTraffic, desired_block, knative_rules


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 5}}),
        ({"list": [1, 2, 3], "x": None}, {"list": [1, 2]}),
        ({}, {"phase": "Pending", "judgeState": {"m": {"n": 1}}}),
        ({"judgeState": {"m": {"n": 1}, "gone": {}}}, {"judgeState": {"m": {"n": 2}}}),
        ({"a": 1}, {"a": 1}),
        ({"v": 1}, {"v": 1.0}),
    ],
)
def test_diff_is_a_merge_patch_that_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    patch = merge_patch_diff(old, new)
    expected = {k: v for k, v in new.items() if v is not None}
    assert apply_merge_patch(old, patch) == expected


def test_diff_is_minimal() -> None:
    assert merge_patch_diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}}) == {}
    assert merge_patch_diff({"a": 1, "b": {"c": 2, "d": 1}}, {"a": 1, "b": {"c": 2}}) == {"b": {"d": None}}


def test_status_patch_carries_the_resource_version_precondition() -> None:
    obj = {"metadata": {"name": "r", "resourceVersion": "42"}, "status": {"phase": "Pending", "message": "x"}}
    patch = status_patch(obj, {"phase": "Progressing", "message": "x"})
    assert patch == {"metadata": {"resourceVersion": "42"}, "status": {"phase": "Progressing"}}
    assert status_patch(obj, {"phase": "Pending", "message": "x"}) is None


def test_route_latest_entries_name_their_configuration() -> None:
    entries = [
        {"revisionName": "r1", "percent": 100, "tag": "stable"},
        {"latestRevision": True, "percent": 0, "tag": "latest"},
    ]
    out = with_configuration(entries, "cfg")
    assert out[1] == {"latestRevision": True, "percent": 0, "tag": "latest", "configurationName": "cfg"}
    assert "configurationName" not in out[0]


def test_knative_rules_reject_a_block_before_anything_is_sent() -> None:
    assert knative_rules([{"revisionName": "r1", "percent": 100, "tag": "stable"}], in_service=True) == []
    problems = knative_rules([{"revisionName": "r1", "percent": 90}], in_service=True)
    assert problems and "100" in problems[0]
    target = KnativeTraffic(None, "Service", "default", "hello", validator=knative_rules)  # type: ignore[arg-type]
    with pytest.raises(InvalidTraffic, match="Service default/hello"):
        target.check(
            [{"revisionName": "r1", "percent": 50}, {"revisionName": "r1", "percent": 40, "tag": "Bad_Tag"}]
        )


def test_the_desired_block_keeps_users_entries_and_names_a_routes_configuration() -> None:
    plan = TrafficPlan(
        (
            TrafficEntry(revision_name="r1", percent=100, tag="stable"),
            TrafficEntry(latest_revision=True, percent=0, tag="latest"),
        )
    )
    current = [
        {"revisionName": "r0", "percent": 0, "tag": "mine"},
        {"revisionName": "r0", "percent": 0, "tag": "control"},
    ]
    block = desired_block(plan, current, "cfg", frozenset({"control"}))
    assert [e.get("tag") for e in block] == ["stable", "latest", "mine"]
    assert block[1]["configurationName"] == "cfg"
    route = KnativeTraffic(None, "Route", "default", "r", validator=knative_rules, configuration="cfg")  # type: ignore[arg-type]
    route.check(block)  # Knative accepts it as it is: nothing is added at write time
