"""The pre-warm hold on a Revision (rollout.knative.minscale): written with the Revision's own min-scale
beside it, undone to exactly that, and invisible to whoever compares the Revision with its template."""

from __future__ import annotations

from typing import Any

from rollout.controller.views import revision_pods, revision_view
from rollout.knative import minscale
from rollout.knative.minscale import HELD_FROM, MIN_SCALE
from rollout.kube.patch import apply_merge_patch

LEGACY = "autoscaling.knative.dev/minScale"


def held_then_restored(annotations: dict[str, Any], want: int) -> tuple[dict[str, Any], dict[str, Any]]:
    rev = {"metadata": {"annotations": dict(annotations)}}
    patch = minscale.read(annotations).patch(want)
    assert patch is not None
    held = apply_merge_patch(rev, patch)
    assert minscale.read(held["metadata"]["annotations"]).patch(want) is None  # already so: no write
    undo = minscale.read(held["metadata"]["annotations"]).patch(None)
    assert undo is not None
    return held["metadata"]["annotations"], apply_merge_patch(held, undo)["metadata"]["annotations"]


def test_a_revision_without_min_scale_gets_it_and_loses_it_again() -> None:
    held, restored = held_then_restored({"x": "1"}, 4)
    assert held == {"x": "1", MIN_SCALE: "4", HELD_FROM: ""}
    assert minscale.read(held) == minscale.MinScale(own=None, held=4, floor=None, ceiling=None)
    assert restored == {"x": "1"}


def test_the_revisions_own_min_scale_comes_back() -> None:
    held, restored = held_then_restored({MIN_SCALE: "2", "autoscaling.knative.dev/max-scale": "9"}, 5)
    assert held[MIN_SCALE] == "5" and held[HELD_FROM] == "2"
    assert minscale.read(held).floor == 2 and minscale.read(held).ceiling == 9
    assert restored == {MIN_SCALE: "2", "autoscaling.knative.dev/max-scale": "9"}


def test_a_legacy_spelling_is_left_alone_and_read_again_after() -> None:
    held, restored = held_then_restored({LEGACY: "3"}, 6)
    assert held == {LEGACY: "3", MIN_SCALE: "6", HELD_FROM: ""}  # the canonical key wins while held
    assert minscale.read(held).floor == 3
    assert restored == {LEGACY: "3"}


def test_a_raised_hold_keeps_the_first_own_value() -> None:
    held, _ = held_then_restored({MIN_SCALE: "1"}, 3)
    raised = minscale.read(held).patch(8)
    assert raised == {"metadata": {"annotations": {MIN_SCALE: "8", HELD_FROM: "1"}}}


def test_views_read_the_revision_as_authored() -> None:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "hello-00002",
            "namespace": "default",
            "labels": {"serving.knative.dev/service": "hello"},
            "annotations": {MIN_SCALE: "10", HELD_FROM: "", "team": "a"},
        },
        "status": {"actualReplicas": 2, "desiredReplicas": 2},
    }
    view = revision_view(obj)
    assert view.template_metadata == {"annotation:team": "a"}  # the hold is not the template's
    assert view.min_scale.held == 10
    # not short for the hold until Knative wants the pods (a Knative that ignores it never does)
    assert revision_pods(obj) == (2, 2)
    obj["status"]["desiredReplicas"] = 10
    assert revision_pods(obj) == (2, 10)
