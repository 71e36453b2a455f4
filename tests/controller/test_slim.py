"""What the informer caches keep: a target keeps the managedFields entries that wrote spec.traffic (drift
detection names the same manager on the slim object as on the full one); other kinds keep none."""

from __future__ import annotations

import copy
from typing import Any

from rollout.controller.drift import last_traffic_writer
from rollout.controller.slim import slim_other, slim_target, slimmer

FULL: list[dict[str, Any]] = [
    {
        "manager": "kn",
        "operation": "Update",
        "apiVersion": "serving.knative.dev/v1",
        "time": "2026-11-25T11:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": {}}, "f:traffic": {}}},
    },
    {
        "manager": "knative-rollout",
        "operation": "Update",
        "time": "2026-11-25T12:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:traffic": {}}},
    },
    {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": "2026-11-25T12:30:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
    },
    {
        "manager": "controller",
        "operation": "Update",
        "subresource": "status",
        "time": "2026-11-25T13:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:traffic": {}}, "f:spec": {"f:traffic": {}}},
    },
    {
        "manager": "argocd-controller",
        "operation": "Apply",
        "time": "2026-11-25T12:10:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:traffic": {}, "f:template": {}}},
    },
]


def service(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": "hello",
            "namespace": "default",
            "resourceVersion": "7",
            "managedFields": fields,
        },
        "spec": {"traffic": [{"revisionName": "hello-00001", "percent": 100}]},
    }


def test_target_keeps_what_drift_detection_reads() -> None:
    full = service(copy.deepcopy(FULL))
    slim = slim_target(copy.deepcopy(full))
    kept = slim["metadata"]["managedFields"]
    assert [e["manager"] for e in kept] == ["kn", "knative-rollout", "argocd-controller"]
    assert last_traffic_writer(kept) == last_traffic_writer(full["metadata"]["managedFields"])
    assert last_traffic_writer(kept) is not None and last_traffic_writer(kept).manager == "argocd-controller"  # type: ignore[union-attr]
    assert slim["spec"] == full["spec"] and slim["metadata"]["resourceVersion"] == "7"


def test_drift_answer_is_the_same_for_every_subset() -> None:
    for n in range(len(FULL) + 1):
        for start in range(len(FULL)):
            fields = copy.deepcopy((FULL * 2)[start : start + n])
            slim = slim_target(service(copy.deepcopy(fields)))["metadata"]["managedFields"]
            assert last_traffic_writer(slim) == last_traffic_writer(fields)


def test_other_kinds_keep_no_managed_fields() -> None:
    rollout = {
        "kind": "Rollout",
        "metadata": {"name": "r", "managedFields": copy.deepcopy(FULL)},
        "status": {},
    }
    assert "managedFields" not in slim_other(rollout)["metadata"]
    assert slimmer("Route") is slim_target and slimmer("Revision") is slim_other
    assert slim_target({"metadata": {"name": "no-fields"}}) == {"metadata": {"name": "no-fields"}}
