"""Which keys the controller reconciles when it starts (or becomes the leader)."""

from __future__ import annotations

import copy
from typing import Any, cast

from rollout.controller.caches import Caches
from rollout.controller.expectations import Expectations
from rollout.controller.views import ObjectKey
from rollout.kube.client import KubeClient
from tests.controller.objects import revision, service


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


Wired = tuple[Caches, Expectations, list[ObjectKey], set[ObjectKey]]


def _wired_with_hold() -> Wired:
    """Caches wired as the controller wires them, while the reconcile of Service default/hello runs: the
    expectations (which hold events until it ends) and the queued keys."""
    caches = Caches.create(cast(KubeClient, None), None)
    running = {ObjectKey("Service", "default", "hello")}
    written = Expectations(running=lambda key: key in running)
    queued: list[ObjectKey] = []
    caches.wire(queued.append, written)
    return caches, written, queued, running


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


def test_the_echo_of_our_own_target_write_is_not_reconciled_again() -> None:
    """A traffic write's answer is noted; its informer event is that write's echo (the reconcile that wrote it
    went on from it), so it queues neither the target nor its policy. Anyone else's change, a later version
    or a resync still does."""
    caches = Caches.create(cast(KubeClient, None), None)
    written = Expectations()
    queued: list[ObjectKey] = []
    caches.wire(queued.append, written)
    before = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 100}])
    ours = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 100, "tag": "stable"}])
    ours["metadata"].update(resourceVersion="11", generation=2)
    written.note_written("Service", "10", ours)

    caches.services._emit("MODIFIED", before, ours)
    assert queued == []
    caches.services._emit("RESYNC", ours, ours)
    assert queued == [ObjectKey("Service", "default", "hello")]
    queued.clear()
    theirs = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 90}])
    theirs["metadata"].update(resourceVersion="12", generation=3)
    caches.services._emit("MODIFIED", ours, theirs)
    assert queued == [ObjectKey("Service", "default", "hello"), ObjectKey("RolloutPolicy", "default", "p")]


def test_an_echo_that_beats_the_write_answer_is_held_until_the_reconcile_ends() -> None:
    """Under load the watch event of our write can arrive before the write's answer is noted: while the
    target's reconcile runs its events are held, then dropped if they were its echo, replayed if not."""
    caches, written, queued, running = _wired_with_hold()
    before = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 100}])
    ours = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 100, "tag": "stable"}])
    ours["metadata"].update(resourceVersion="11", generation=2)
    caches.services._emit("MODIFIED", before, ours)  # the echo, before the answer
    theirs = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 90}])
    theirs["metadata"].update(resourceVersion="12", generation=3)
    caches.services._emit("MODIFIED", ours, theirs)  # somebody else's change, meanwhile
    assert queued == []
    written.note_written("Service", "10", ours)  # the write's answer
    running.clear()
    written.release(KEY)  # the reconcile ends
    assert queued == [ObjectKey("Service", "default", "hello"), ObjectKey("RolloutPolicy", "default", "p")]
    queued.clear()
    again = service("hello", spec_traffic=[{"revisionName": "hello-00001", "percent": 80}])
    again["metadata"].update(resourceVersion="13", generation=4)
    caches.services._emit("MODIFIED", theirs, again)  # no reconcile running: straight through
    assert queued == [ObjectKey("Service", "default", "hello"), ObjectKey("RolloutPolicy", "default", "p")]


def test_a_revision_change_is_reconciled_only_when_it_is_something_the_reconcile_reads() -> None:
    caches = Caches.create(cast(KubeClient, None), None)
    caches.services._replace(None, [service("hello")])
    queued: list[ObjectKey] = []
    caches.wire(queued.append)
    pending = revision("hello-00002", generation=2, ready="Unknown", labels={ROUTING: "pending"})
    active = revision("hello-00002", generation=2, ready="Unknown", labels={ROUTING: "active"})
    caches.revisions._emit("MODIFIED", pending, active)  # Knative's routing bookkeeping
    assert queued == []
    ready = revision("hello-00002", generation=2, ready="True", labels={ROUTING: "active"})
    caches.revisions._emit("MODIFIED", active, ready)
    relabelled = revision("hello-00002", generation=2, labels={ROUTING: "active", "team": "b"})
    caches.revisions._emit("MODIFIED", ready, relabelled)  # a template label is the user's configuration
    assert queued == [ObjectKey("Service", "default", "hello")] * 2


ROUTING = "serving.knative.dev/routingState"


def test_knative_progress_on_a_target_is_reconciled_only_once_it_settles() -> None:
    """After a traffic write Knative reports its progress (Ready Unknown: OutOfDate, then the Route's own
    steps) before the split is served: nothing a reconcile could decide, so only the change to True (or
    False) queues one. Anything else that changes meanwhile still does."""
    caches = Caches.create(cast(KubeClient, None), None)
    queued: list[ObjectKey] = []
    caches.wire(queued.append)
    split = [{"revisionName": "hello-00001", "percent": 90}, {"revisionName": "hello-00002", "percent": 10}]
    written = service("hello", spec_traffic=split, generation=2, observed_generation=1)
    out_of_date = service(
        "hello", spec_traffic=split, generation=2, observed_generation=2, routes_ready="Unknown"
    )
    out_of_date["status"]["conditions"][0]["reason"] = "OutOfDate"
    probing = copy.deepcopy(out_of_date)
    probing["status"]["conditions"][0]["reason"] = "IngressNotConfigured"
    served = service("hello", spec_traffic=split, status_traffic=split, generation=2, observed_generation=2)
    caches.services._emit("MODIFIED", written, out_of_date)
    caches.services._emit("MODIFIED", out_of_date, probing)
    assert queued == []
    caches.services._emit("MODIFIED", probing, served)
    assert queued == [KEY]
    queued.clear()

    failed = service("hello", spec_traffic=split, generation=2, observed_generation=2, routes_ready="False")
    caches.services._emit("MODIFIED", probing, failed)  # a failure is worth a look
    caches.services._emit("MODIFIED", failed, probing)  # and so is its end (the status says why it waits)
    assert queued == [KEY, KEY]
    queued.clear()

    new_revision = copy.deepcopy(probing)
    new_revision["status"]["latestCreatedRevisionName"] = "hello-00003"
    caches.services._emit("MODIFIED", probing, new_revision)  # a new revision while Knative works
    theirs = copy.deepcopy(probing)
    theirs["spec"]["traffic"] = [{"revisionName": "hello-00001", "percent": 100}]
    theirs["metadata"]["generation"] = 3
    caches.services._emit("MODIFIED", probing, theirs)  # somebody else's traffic write
    assert queued[:2] == [KEY, KEY]


KEY = ObjectKey("Service", "default", "hello")


def test_the_echo_of_our_own_rollout_create_is_not_reconciled_again() -> None:
    """The reconcile that created a Rollout went on to write its status and traffic: the create's ADDED
    event queues nothing, once. A Rollout someone else created, or a later version of ours, still does."""
    caches = Caches.create(cast(KubeClient, None), None)
    written = Expectations()
    queued: list[ObjectKey] = []
    caches.wire(queued.append, written)
    ours = _rollout("hello-00002.1", "hello", None)
    written.note_created("Rollout", ours)

    caches.rollouts._emit("ADDED", None, ours)
    assert queued == []
    caches.rollouts._emit("ADDED", None, ours)  # recognised once: a re-list's ADDED is reconciled
    theirs = _rollout("other-00002.1", "other", None)
    caches.rollouts._emit("ADDED", None, theirs)
    later = copy.deepcopy(ours)
    later["metadata"]["resourceVersion"] = "7"
    written.note_created("Rollout", ours)
    caches.rollouts._emit("ADDED", None, later)  # not the version our create returned
    assert queued == [
        ObjectKey("Service", "default", "hello"),
        ObjectKey("Service", "default", "other"),
        ObjectKey("Service", "default", "hello"),
    ]


def test_a_rollout_create_echo_that_beats_the_answer_is_held_until_the_reconcile_ends() -> None:
    caches, written, queued, running = _wired_with_hold()
    ours = _rollout("hello-00002.1", "hello", None)
    theirs = _rollout("hello-00003.1", "hello", None)
    caches.rollouts._emit("ADDED", None, ours)  # the echo, before the create's answer is noted
    caches.rollouts._emit("ADDED", None, theirs)  # somebody else's, meanwhile
    assert queued == []
    written.note_created("Rollout", ours)  # the create's answer
    running.clear()
    written.release(KEY)  # the reconcile ends
    assert queued == [ObjectKey("Service", "default", "hello")]
