"""Which keys the controller reconciles when it starts (or becomes the leader)."""

from __future__ import annotations

from typing import Any, cast

from rollout.controller.caches import Caches
from rollout.controller.views import ObjectKey
from rollout.kube.client import KubeClient
from tests.controller.objects import service


def _rollout(name: str, target: str, phase: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": "1",
            "labels": {"knrollout.dev/target": target, "knrollout.dev/target-kind": "Service"},
        },
    }
    if phase is not None:
        obj["status"] = {"phase": phase}
    return obj


def test_targets_of_running_rollouts_are_reconciled_even_when_no_longer_labelled() -> None:
    """A Service whose label was removed while no controller ran is not in the (labelled) Service cache;
    its running rollout still names it, so it is reconciled (and the rollout ends OptedOut)."""
    caches = Caches.create(cast(KubeClient, None), None)  # never run: the caches are filled by hand
    caches.services._replace(None, [service("hello")])
    caches.rollouts._replace(
        None,
        [
            _rollout("hello-00002.1", "hello", "Progressing"),  # a target the cache has
            _rollout("gone-00002.1", "gone", "Paused"),  # a target that left the informer
            _rollout("gone-00001.1", "gone", "Succeeded"),
            _rollout("old-00002.1", "old", "RolledBack"),  # finished: nothing to do
            _rollout("new-00002.1", "new", None),  # no status yet: Pending
        ],
    )
    keys = caches.all_keys()
    targets = [k for k in keys if k.kind == "Service"]
    assert sorted(targets, key=str) == [
        ObjectKey("Service", "default", "gone"),
        ObjectKey("Service", "default", "hello"),
        ObjectKey("Service", "default", "new"),
    ]
