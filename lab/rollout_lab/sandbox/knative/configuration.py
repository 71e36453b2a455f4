"""What Knative's Configuration reconciler wants (pure): one Revision per template generation, and the
Configuration's status (latestCreated / latestReady revision names, Ready)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rollout_lab.sandbox.apiserver.objects import clone
from rollout_lab.sandbox.knative import conditions, names
from rollout_lab.sandbox.knative.service import meta, owner_reference
from rollout_lab.sandbox.store_api import Obj


def revision_name(configuration: Mapping[str, Any]) -> str:
    """`{configuration}-{generation:05d}`, or the name the user chose in spec.template.metadata.name."""
    template = (configuration.get("spec") or {}).get("template") or {}
    chosen = meta(template).get("name")
    if chosen:
        return str(chosen)
    return f"{meta(configuration).get('name')}-{int(meta(configuration).get('generation') or 1):05d}"


def _generation_of(revision: Mapping[str, Any]) -> int:
    try:
        return int((meta(revision).get("labels") or {}).get(names.CONFIGURATION_GENERATION_LABEL, 0))
    except ValueError:
        return 0


def desired_revision(configuration: Mapping[str, Any], now: float) -> Obj:
    """The Revision Knative stamps out of the Configuration's current template."""
    cmeta = meta(configuration)
    template = (configuration.get("spec") or {}).get("template") or {}
    tmeta = meta(template)
    labels = dict(tmeta.get("labels") or {})
    config_labels = cmeta.get("labels") or {}
    for key in (names.SERVICE_LABEL, names.SERVICE_UID_LABEL):
        if key in config_labels:
            labels[key] = config_labels[key]
    labels[names.CONFIGURATION_LABEL] = str(cmeta.get("name"))
    labels[names.CONFIGURATION_UID_LABEL] = str(cmeta.get("uid", ""))
    labels[names.CONFIGURATION_GENERATION_LABEL] = str(cmeta.get("generation") or 1)
    labels[names.ROUTING_STATE_LABEL] = names.ROUTING_PENDING
    annotations = dict(tmeta.get("annotations") or {})
    annotations[names.ROUTING_STATE_MODIFIED_ANNOTATION] = conditions.rfc3339(now)
    return {
        "apiVersion": names.API_VERSION,
        "kind": "Revision",
        "metadata": {
            "name": revision_name(configuration),
            "namespace": cmeta.get("namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(configuration, "Configuration")],
        },
        "spec": clone(template.get("spec") or {}),
    }


def current_revision(
    configuration: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The revision of the Configuration's current generation, if created (by name for a user-chosen
    name, else by the configurationGeneration label)."""
    wanted = revision_name(configuration)
    generation = int(meta(configuration).get("generation") or 1)
    for revision in revisions:
        if meta(revision).get("name") == wanted and _generation_of(revision) == generation:
            return revision
    return None


def configuration_status(
    configuration: Mapping[str, Any],
    revisions: Sequence[Mapping[str, Any]],
    now: float,
) -> Obj:
    """The Configuration's status, given its revisions (as they are in the store)."""
    previous = configuration.get("status") or {}
    by_name = {str(meta(r).get("name")): r for r in revisions}
    latest_created = current_revision(configuration, revisions)
    created_name = str(meta(latest_created).get("name")) if latest_created else ""
    latest_ready = str(previous.get("latestReadyRevisionName") or "")
    ready_generation = _generation_of(by_name[latest_ready]) if latest_ready in by_name else 0
    for revision in revisions:
        generation = _generation_of(revision)
        if conditions.status_of(revision) == "True" and generation > ready_generation:
            latest_ready, ready_generation = str(meta(revision).get("name")), generation
    status: Obj = {"observedGeneration": meta(configuration).get("generation")}
    if created_name:
        status["latestCreatedRevisionName"] = created_name
    elif previous.get("latestCreatedRevisionName"):
        status["latestCreatedRevisionName"] = previous["latestCreatedRevisionName"]
    if latest_ready:
        status["latestReadyRevisionName"] = latest_ready
    ready = _ready_condition(created_name, latest_ready, latest_created, by_name)
    status["conditions"] = conditions.merge(previous.get("conditions"), [ready], now)
    return status


def _ready_condition(
    created_name: str,
    latest_ready: str,
    latest_created: Mapping[str, Any] | None,
    by_name: Mapping[str, Mapping[str, Any]],
) -> conditions.Condition:
    if latest_ready and latest_ready not in by_name:
        return conditions.make("Ready", "False", "RevisionDeleted", f'Revision "{latest_ready}" was deleted.')
    if created_name and created_name == latest_ready:
        return conditions.make("Ready", "True")
    if latest_created is not None and conditions.status_of(latest_created) == "False":
        ready = conditions.find((latest_created.get("status") or {}).get("conditions"), "Ready") or {}
        return conditions.make(
            "Ready",
            "False",
            "RevisionFailed",
            f'Revision "{created_name}" failed with message: {ready.get("message", "")}.',
        )
    return conditions.make("Ready", "Unknown")
