"""A Revision's status (pure), from what the simulated data plane says about it.

Conditions as Knative sets them: Ready summarises ResourcesAvailable and ContainerHealthy; Active (severity
Info, not part of Ready) is True with pods, False with reason NoTraffic when scaled to zero, Unknown with
reason Queued while a request waits for the first pod. While deploying, everything is Unknown with reason
Deploying. Failures requested with the `sandbox.knrollout.dev/fail` annotation surface after the ready delay:

- ImagePullBackOff: ResourcesAvailable=False (ImagePullBackOff, `Back-off pulling image "<image>"`);
- ContainerMissing: ContainerHealthy=False (ContainerMissing, `Unable to fetch image "<image>": ...`);
- CrashLoopBackOff: ContainerHealthy=False (ExitCode1, `Container failed with: <message>`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from rollout_lab.sandbox.knative import conditions, names
from rollout_lab.sandbox.knative.fleet import RevisionRuntime
from rollout_lab.sandbox.knative.service import meta
from rollout_lab.sandbox.store_api import Obj

DEPLOYING = "Deploying"
CONTAINER_NAME = "user-container"


def image_digest(image: str) -> str:
    """A stable fake digest: what Knative's tag-to-digest resolution writes into containerStatuses."""
    repository = image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in image or ":" in image else image
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _failure_conditions(
    runtime: RevisionRuntime, message: str
) -> tuple[conditions.Condition, conditions.Condition]:
    image = runtime.image
    if runtime.failure == "ImagePullBackOff":
        return (
            conditions.make("ResourcesAvailable", "False", "ImagePullBackOff", message or f'Back-off pulling image "{image}"'),
            conditions.make("ContainerHealthy", "Unknown", DEPLOYING),
        )  # fmt: skip
    if runtime.failure == "ContainerMissing":
        detail = message or "failed to resolve image to digest: MANIFEST_UNKNOWN: manifest unknown"
        return (
            conditions.make("ResourcesAvailable", "Unknown", DEPLOYING),
            conditions.make("ContainerHealthy", "False", "ContainerMissing", f'Unable to fetch image "{image}": {detail}'),
        )  # fmt: skip
    return (
        conditions.make("ResourcesAvailable", "Unknown", DEPLOYING),
        conditions.make(
            "ContainerHealthy",
            "False",
            "ExitCode1",
            "Container failed with: " + (message or "simulated crash"),
        ),
    )


def revision_status(revision: Mapping[str, Any], runtime: RevisionRuntime | None, now: float) -> Obj:
    previous = revision.get("status") or {}
    annotations = meta(revision).get("annotations") or {}
    status: Obj = {"observedGeneration": meta(revision).get("generation", 1)}
    if runtime is None:
        dependents = [
            conditions.make("ResourcesAvailable", "Unknown", DEPLOYING),
            conditions.make("ContainerHealthy", "Unknown", DEPLOYING),
        ]
        active = conditions.make("Active", "Unknown", DEPLOYING)
    elif runtime.failed(now):
        dependents = list(
            _failure_conditions(runtime, str(annotations.get(names.FAIL_MESSAGE_ANNOTATION, "")))
        )
        active = conditions.make("Active", "False", "TimedOut", "The target could not be activated.")
        status["actualReplicas"] = 0
        status["desiredReplicas"] = 0
    elif not runtime.deployed(now):
        dependents = [
            conditions.make("ResourcesAvailable", "Unknown", DEPLOYING),
            conditions.make("ContainerHealthy", "Unknown", DEPLOYING),
        ]
        active = conditions.make("Active", "Unknown", DEPLOYING)
        status["actualReplicas"] = 0
        status["desiredReplicas"] = runtime.scaler.desired
    else:
        dependents = [
            conditions.make("ResourcesAvailable", "True"),
            conditions.make("ContainerHealthy", "True"),
        ]
        ready_pods = len(runtime.ready_pods(now))
        if ready_pods > 0:
            active = conditions.make("Active", "True")
        elif runtime.scaler.desired > 0 or runtime.activating:
            active = conditions.make(
                "Active",
                "Unknown",
                "Queued",
                "Requests to the target are being buffered as resources are provisioned.",
            )
        else:
            active = conditions.make("Active", "False", "NoTraffic", "The target is not receiving traffic.")
        status["actualReplicas"] = ready_pods
        status["desiredReplicas"] = runtime.scaler.desired
    if runtime is not None and runtime.failure != "ContainerMissing":
        digest = image_digest(runtime.image)
        status["containerStatuses"] = [{"name": _container_name(revision), "imageDigest": digest}]
    status["conditions"] = conditions.merge(
        previous.get("conditions"), conditions.living(dependents, [active]), now
    )
    return status


def _container_name(revision: Mapping[str, Any]) -> str:
    containers = (revision.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name") or CONTAINER_NAME)
