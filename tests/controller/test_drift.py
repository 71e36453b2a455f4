from typing import Any

from rollout.api.rollout import TrafficEntry
from rollout.controller.drift import detect_drift, last_traffic_writer

PLAN = [
    TrafficEntry(revision_name="hello-00001", percent=90, tag="stable"),
    TrafficEntry(revision_name="hello-00002", percent=10, tag="canary"),
    TrafficEntry(latest_revision=True, percent=0, tag="latest"),
]
WRITTEN = [e.to_wire() for e in PLAN]


def managed(manager: str, time: str, traffic: bool = True, operation: str = "Update") -> dict[str, Any]:
    fields: dict[str, Any] = {"f:spec": {"f:traffic": {}}} if traffic else {"f:spec": {"f:template": {}}}
    return {"manager": manager, "operation": operation, "time": time, "fieldsV1": fields}


def test_no_drift_when_spec_is_what_the_controller_wrote_plus_user_tags() -> None:
    current = [*WRITTEN, {"revisionName": "hello-00001", "percent": 0, "tag": "debug"}]
    assert detect_drift(current, PLAN, [], "knative-rollout", served=True) is None


def test_gitops_rewrite_is_drift_naming_the_manager_and_the_change() -> None:
    current = [{"latestRevision": True, "percent": 100}]
    fields = [
        managed("knative-rollout", "2026-11-25T12:00:00Z"),
        managed("argocd-controller", "2026-11-25T12:01:00Z"),
        managed("kubectl-edit", "2026-11-25T11:00:00Z"),
        managed("knative-serving", "2026-11-25T12:05:00Z", traffic=False),
    ]
    drift = detect_drift(current, PLAN, fields, "knative-rollout", served=True)
    assert drift is not None
    assert drift.writer is not None and drift.writer.manager == "argocd-controller"
    msg = drift.message()
    assert "'argocd-controller' (Update at 2026-11-25T12:01:00Z)" in msg
    assert "hello-00002 10% (canary)" in msg and "latest 100%" in msg


PREVIOUS_STEP = [
    {"revisionName": "hello-00001", "percent": 100, "tag": "stable"},
    {"revisionName": "hello-00002", "percent": 0, "tag": "canary"},
    {"latestRevision": True, "percent": 0, "tag": "latest"},
]


def test_a_plan_recorded_but_not_yet_written_is_not_drift() -> None:
    # the status (PLAN) is written before the traffic: spec.traffic still holds the previous step
    fields = [managed("kubectl", "2026-11-25T11:00:00Z"), managed("knative-rollout", "2026-11-25T12:00:00Z")]
    assert detect_drift(PREVIOUS_STEP, PLAN, fields, "knative-rollout", served=False) is None
    assert detect_drift(PREVIOUS_STEP, PLAN, [], "knative-rollout", served=False) is None


def test_a_conflict_on_our_own_write_does_not_blame_the_last_writer() -> None:
    # our first step write met a 409: spec.traffic is still what kubectl applied with the new image, and
    # the plan recorded in the status was never served
    applied = [{"latestRevision": True, "percent": 100}]
    fields = [managed("kubectl-client-side-apply", "2026-11-25T12:00:00Z")]
    assert detect_drift(applied, PLAN, fields, "knative-rollout", served=False) is None
    # once the plan has been served, the same change is drift, and kubectl is named
    drift = detect_drift(applied, PLAN, fields, "knative-rollout", served=True)
    assert drift is not None and drift.writer is not None
    assert drift.writer.manager == "kubectl-client-side-apply"


def test_without_managed_fields_drift_needs_the_plan_to_have_been_served() -> None:
    drift = detect_drift(PREVIOUS_STEP, PLAN, [], "knative-rollout", served=True)
    assert drift is not None and drift.writer is None and "an unknown writer" in drift.message()


def test_nothing_written_yet_is_never_drift() -> None:
    assert (
        detect_drift([{"latestRevision": True, "percent": 100}], [], [], "knative-rollout", served=True)
        is None
    )


def test_status_subresource_writes_do_not_count_as_traffic_writers() -> None:
    entry = {**managed("knative-serving", "2026-11-25T13:00:00Z"), "subresource": "status"}
    assert last_traffic_writer([entry]) is None


def test_a_routes_latest_entry_naming_its_configuration_is_no_drift() -> None:
    """A standalone Route holds `configurationName` on its `latest` entry (the controller writes it so);
    that is the plan as written, not someone else's change."""
    current = [
        *WRITTEN[:2],
        {"latestRevision": True, "percent": 0, "tag": "latest", "configurationName": "hello"},
    ]
    assert detect_drift(current, PLAN, [], "knative-rollout", served=True, configuration="hello") is None
    other = [*WRITTEN[:2], {**current[2], "configurationName": "other"}]
    assert detect_drift(other, PLAN, [], "knative-rollout", served=True, configuration="hello") is not None
