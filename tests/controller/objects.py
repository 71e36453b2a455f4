"""Knative and knrollout objects as the API server returns them, for the controller's pure tests."""

from __future__ import annotations

from typing import Any

from rollout.api.policy import RolloutPolicySpec
from rollout.api.rollout import Phase, Rollout, RolloutStatus, TrafficEntry
from rollout.controller.rollouts import new_rollout
from rollout.controller.views import TargetView, target_view

POLICY = {"strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 50}], "interval": "10s"}}}


def service(
    name: str = "hello",
    *,
    spec_traffic: list[dict[str, Any]] | None = None,
    status_traffic: list[dict[str, Any]] | None = None,
    latest_created: str | None = "hello-00001",
    latest_ready: str | None = "hello-00001",
    generation: int = 1,
    observed_generation: int = 1,
    routes_ready: str = "True",
    policy: str = "p",
    managed_fields: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "resourceVersion": "10",
            "generation": generation,
            "labels": {"knrollout.dev/policy": policy},
            "managedFields": managed_fields or [],
        },
        "spec": {"template": {}, "traffic": spec_traffic if spec_traffic is not None else []},
        "status": {
            "observedGeneration": observed_generation,
            "latestCreatedRevisionName": latest_created,
            "latestReadyRevisionName": latest_ready,
            "traffic": status_traffic
            if status_traffic is not None
            else [{"revisionName": "hello-00001", "latestRevision": True, "percent": 100}],
            "conditions": [
                {"type": "Ready", "status": routes_ready},
                {"type": "RoutesReady", "status": routes_ready},
                {"type": "ConfigurationsReady", "status": "True"},
            ],
        },
    }


def revision(
    name: str,
    *,
    generation: int,
    ready: str = "True",
    image: str = "img:1",
    message: str = "",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "Revision",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {
                "serving.knative.dev/service": "hello",
                "serving.knative.dev/configuration": "hello",
                "serving.knative.dev/configurationGeneration": str(generation),
                **(labels or {}),
            },
            "annotations": annotations or {},
        },
        "spec": {"containers": [{"image": image}]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": ready, "reason": "X" if message else "", "message": message}
            ]
        },
    }


def view(**kwargs: Any) -> TargetView:
    return target_view(service(**kwargs))


def rollout(
    candidate: str = "hello-00002",
    stable: str = "hello-00001",
    *,
    phase: Phase = Phase.PENDING,
    attempt: int = 1,
    generation: int | None = 2,
    traffic: list[TrafficEntry] | None = None,
    policy: dict[str, Any] | None = None,
) -> Rollout:
    spec = RolloutPolicySpec.model_validate(policy or POLICY)
    body = new_rollout(view(), stable, candidate, "p", 1, spec, generation, attempt=attempt)
    r = Rollout.model_validate(body)
    status = RolloutStatus(phase=phase, traffic=traffic or [])
    return r.model_copy(update={"status": status})
