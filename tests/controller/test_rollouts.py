from typing import Any

from rollout.api.rollout import Phase, TargetRef
from rollout.controller.rollouts import (
    active,
    candidate_to_start,
    check_candidate,
    expired_history,
    latest,
    rollout_name,
    same_configuration,
)
from rollout.controller.views import RevisionView, revision_view
from tests.controller.objects import revision, rollout


def revs(*items: dict[str, Any]) -> dict[str, RevisionView]:
    return {r.name: r for r in (revision_view(i) for i in items)}


REVS = revs(
    revision("hello-00001", generation=1, image="img:1"),
    revision("hello-00002", generation=2, image="img:2"),
    revision("hello-00003", generation=3, image="img:3"),
    revision("hello-00004", generation=4, image="img:1"),  # the stable template again
)


def test_names_are_deterministic_and_never_collide_between_kinds() -> None:
    svc = TargetRef(kind="Service", name="hello")
    route = TargetRef(kind="Route", name="hello")
    assert rollout_name(svc, "hello-00002", 1) == "hello-00002.1"
    assert rollout_name(svc, "hello-00002", 2) == "hello-00002.2"
    assert rollout_name(route, "hello-00002", 1) == "hello.hello-00002.1"


def test_latest_and_active_follow_candidate_generation_then_attempt() -> None:
    a = rollout("hello-00002", generation=2, phase=Phase.ROLLED_BACK)
    b = rollout("hello-00002", generation=2, attempt=2, phase=Phase.PROGRESSING)
    c = rollout("hello-00003", generation=3, phase=Phase.SUCCEEDED)
    assert latest([b, c, a]) is c
    assert active([a, b, c]) is b
    assert active([a, c]) is None


def test_a_newer_revision_supersedes_an_older_one_does_not() -> None:
    r = rollout("hello-00002")
    assert check_candidate(r, "hello-00003", REVS).superseded_by == "hello-00003"
    assert check_candidate(r, "hello-00002", REVS).superseded_by is None
    r3 = rollout("hello-00003", generation=3)
    assert check_candidate(r3, "hello-00002", REVS).superseded_by is None


def test_template_reverted_to_stable_configuration() -> None:
    r = rollout("hello-00002")
    assert check_candidate(r, "hello-00004", REVS).template_reverted  # same spec as hello-00001
    assert check_candidate(r, "hello-00001", REVS).template_reverted  # named revision reused


def test_same_configuration_is_the_spec_and_the_metadata_the_user_set() -> None:
    """An annotation-only template change (min-scale, say) is a new configuration; what Knative writes on
    its revisions (routes, creator, routingState, its own labels) is not part of it."""
    knative_labels = {
        "serving.knative.dev/routingState": "active",
        "serving.knative.dev/configurationUID": "u",
    }
    knative_annotations = {
        "serving.knative.dev/creator": "alice@example.com",
        "serving.knative.dev/lastModifier": "bob@example.com",
        "serving.knative.dev/routes": "hello",
        "serving.knative.dev/routingStateModified": "2026-11-25T12:00:00Z",
    }
    scaled = {"autoscaling.knative.dev/min-scale": "1"}
    r = revs(
        revision("hello-00001", generation=1, annotations=scaled),
        # the same template, stamped out again: only what Knative manages differs
        revision(
            "hello-00002", generation=2, labels=knative_labels, annotations={**scaled, **knative_annotations}
        ),
        revision("hello-00003", generation=3),  # min-scale removed: a new configuration
        revision("hello-00004", generation=4, annotations={**scaled, "sandbox.knrollout.dev/fail": "x"}),
        revision("hello-00005", generation=5, annotations=scaled, labels={"team": "shop"}),
    )
    assert same_configuration(r["hello-00001"], r["hello-00002"])
    for other in ("hello-00003", "hello-00004", "hello-00005"):
        assert not same_configuration(r["hello-00001"], r[other]), other
    assert candidate_to_start("hello-00001", "hello-00003", r, []) == "hello-00003"
    assert candidate_to_start("hello-00001", "hello-00002", r, []) is None


def test_candidate_to_start() -> None:
    assert candidate_to_start("hello-00001", "hello-00002", REVS, []) == "hello-00002"
    assert candidate_to_start("hello-00001", "hello-00001", REVS, []) is None
    assert candidate_to_start("hello-00001", "hello-00002", REVS, [rollout("hello-00002")]) is None
    assert candidate_to_start("hello-00001", "hello-00004", REVS, []) is None  # reverted template
    assert candidate_to_start("hello-00003", "hello-00002", REVS, []) is None  # older than stable
    # a created-but-not-yet-listed revision still gets a rollout (Pending until it exists and is Ready)
    assert candidate_to_start("hello-00001", "hello-00009", REVS, []) == "hello-00009"


def test_history_keeps_the_newest_finished_rollouts_and_never_the_latest() -> None:
    done = [rollout(f"hello-{i:05d}", generation=i, phase=Phase.SUCCEEDED) for i in range(2, 8)]
    running = rollout("hello-00008", generation=8, phase=Phase.PROGRESSING)
    expired = expired_history([*done, running], 3)
    assert [r.spec.candidate_revision for r in expired] == ["hello-00002", "hello-00003", "hello-00004"]
    expired = expired_history(done, 3)  # the latest is finished: it counts towards the limit
    assert [r.spec.candidate_revision for r in expired] == [f"hello-{i:05d}" for i in range(2, 5)]
    assert expired_history(done[:1], 1) == []
