from collections.abc import Sequence
from typing import Any

from rollout.api.load import policy_hash
from rollout.api.rollout import ManualRequest, Phase, RequestAction, Rollout
from rollout.controller.assess import Assessment, PolicyView, TargetState, assess, policy_view, settled
from rollout.controller.layout import Adopt, Managed, Unmanageable
from rollout.controller.views import TargetView, revision_view
from rollout.engine.plans import pinned, with_candidate_parked
from tests.controller.objects import POLICY, revision, rollout, view
from tests.engine.world import T0

PINNED = [
    {"revisionName": "hello-00001", "percent": 100, "tag": "stable"},
    {"latestRevision": True, "percent": 0, "tag": "latest"},
]
REVS = {
    r.name: r
    for r in map(
        revision_view,
        [
            revision("hello-00001", generation=1),
            revision("hello-00002", generation=2, image="img:2"),
            revision("hello-00003", generation=3, image="img:3"),
        ],
    )
}


def policy(spec: dict[str, Any] | None = None, generation: int = 3) -> PolicyView:
    return policy_view(
        {
            "apiVersion": "knrollout.dev/v1alpha1",
            "kind": "RolloutPolicy",
            "metadata": {"name": "p", "namespace": "default", "uid": "pu", "generation": generation},
            "spec": spec if spec is not None else POLICY,
        }
    )


def state(
    target: TargetView | None = None,
    rollouts: Sequence[Rollout] = (),
    pol: PolicyView | str | None = "default",
    opted_out: bool = False,
) -> TargetState:
    return TargetState(
        target=target or view(),
        policy=policy() if isinstance(pol, str) else pol,
        revisions=REVS,
        rollouts=list(rollouts),
        opted_out=opted_out,
    )


def test_opted_in_service_is_pinned_to_what_it_serves() -> None:
    a = assess(state())
    assert a.layout == Adopt("hello-00001") and a.adopting
    assert a.idle == pinned("hello-00001")
    assert a.create is None and a.drive is None and not a.notices


def test_new_revision_starts_a_rollout_with_the_policy_frozen() -> None:
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00002", latest_ready="hello-00002")))
    assert a.layout == Managed("hello-00001") and a.create is not None
    created = Rollout.model_validate(a.create)
    assert created.metadata.name == "hello-00002.1"
    assert created.spec.stable_revision == "hello-00001"
    assert created.spec.candidate_revision == "hello-00002"
    assert created.spec.policy.generation == 3
    frozen = created.spec.policy.spec
    # the controller's --prometheus-url is read at each analysis: not frozen, so fixing it applies now
    assert frozen.metric_source.prometheus.address is None and frozen.metric_source.dialect is None
    assert created.spec.policy.hash == policy_hash(frozen)
    labels = a.create["metadata"]["labels"]
    assert labels["knrollout.dev/target"] == "hello"
    assert labels["knrollout.dev/candidate"] == "hello-00002"
    assert labels["knrollout.dev/candidate-generation"] == "2"
    owner = a.create["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Service", "hello", "uid-hello")


def test_unready_candidate_still_gets_a_rollout() -> None:
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00002", latest_ready="hello-00001")))
    assert a.create is not None and a.create["spec"]["candidateRevision"] == "hello-00002"


def test_invalid_policy_never_touches_traffic_and_says_why() -> None:
    bad = policy({"strategy": {"canary": {"steps": [{"weight": 10, "pause": {}}]}}})
    assert bad.spec is None and bad.problems
    a = assess(state(view(latest_created="hello-00002"), pol=bad))
    assert a.idle is None and a.create is None and a.drive is None
    (notice,) = a.notices
    assert notice.reason == "PolicyInvalid" and notice.type == "Warning"
    assert "spec.strategy.canary.steps[0]" in notice.message


def test_running_rollout_continues_on_its_frozen_policy_when_the_policy_breaks() -> None:
    bad = policy({"strategy": {}})
    run = rollout(phase=Phase.PROGRESSING)
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00002"), [run], pol=bad))
    assert a.drive is not None and a.drive.rollout is run
    assert [n.reason for n in a.notices] == ["PolicyInvalid"]


def test_missing_policy_is_reported() -> None:
    a = assess(state(pol=None))
    assert [n.reason for n in a.notices] == ["PolicyNotFound"] and a.idle is None


def test_three_way_split_is_left_alone_with_a_warning() -> None:
    split = [
        {"revisionName": "hello-00001", "percent": 50},
        {"revisionName": "hello-00002", "percent": 30},
        {"revisionName": "hello-00003", "percent": 20},
    ]
    a = assess(state(view(spec_traffic=split, latest_created="hello-00003")))
    assert isinstance(a.layout, Unmanageable) and a.unmanageable
    assert a.idle is None and a.create is None
    assert [n.reason for n in a.notices] == ["UnmanageableTraffic"]


def test_newer_revision_mid_rollout_is_passed_to_decide_as_superseding() -> None:
    run = rollout(phase=Phase.PROGRESSING)
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00003"), [run]))
    assert a.drive is not None and a.drive.check.superseded_by == "hello-00003"
    assert a.drive.candidate.name == "hello-00002" and a.drive.candidate.ready is True


def test_after_a_rollback_the_parked_candidate_is_held_and_not_rolled_out_again() -> None:
    parked = with_candidate_parked("hello-00001", "hello-00002")
    done = rollout(phase=Phase.ROLLED_BACK, traffic=list(parked.entries))
    served = done.model_copy(update={"status": done.status.model_copy(update={"traffic_applied": True})})
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00002"), [served]))
    assert a.create is None and a.drive is None
    assert a.idle == parked


def test_a_finished_rollout_is_decided_again_until_knative_serves_its_final_plan() -> None:
    """The rollback's traffic is written when it is decided; Knative serves it later. Until it does, the
    rollout is driven again (so that its status and TrafficApplied condition say when it is served); then
    the target is left alone. A new candidate still takes precedence."""
    parked = with_candidate_parked("hello-00001", "hello-00002")
    done = rollout(phase=Phase.ROLLED_BACK, traffic=list(parked.entries))
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00002"), [done]))
    assert a.drive is not None and a.drive.rollout is done and a.idle is None and a.create is None
    assert not settled(done)
    newer = assess(state(view(spec_traffic=PINNED, latest_created="hello-00003"), [done]))
    assert newer.create is not None and newer.drive is None


def test_a_finished_rollout_is_settled_once_served_and_its_post_rollout_hooks_called() -> None:
    hook = {"name": "notify", "type": "postRollout", "url": "http://127.0.0.1:9/notify"}
    done = rollout(phase=Phase.SUCCEEDED, policy={**POLICY, "webhooks": [hook]})
    served = done.status.model_copy(update={"traffic_applied": True})
    assert not settled(done.model_copy(update={"status": served}))
    called = served.model_copy(update={"completed_webhooks": ["postRollout/notify"]})
    assert settled(done.model_copy(update={"status": called}))
    assert not settled(rollout(phase=Phase.PROGRESSING))


def test_retry_request_on_the_finished_rollout_drives_it() -> None:
    done = rollout(phase=Phase.ROLLED_BACK)
    req = ManualRequest(action=RequestAction.RETRY, id="r1", requested_at=T0)
    done = done.model_copy(update={"spec": done.spec.model_copy(update={"request": req})})
    a = assess(state(view(spec_traffic=PINNED, latest_created="hello-00002"), [done]))
    assert a.drive is not None and a.drive.rollout is done


def test_an_opted_out_target_only_sees_its_running_rollout_ended() -> None:
    """Label removed: the running rollout is driven (to end it); then the OptedOut one until settled;
    nothing else — no missing-policy warning, no new rollout, no pinning."""
    target = view(spec_traffic=PINNED, latest_created="hello-00003")
    running = rollout(phase=Phase.PAUSED)
    a = assess(state(target, [running], pol=None, opted_out=True))
    assert a.drive is not None and a.drive.rollout is running and not a.notices and a.create is None
    ended = rollout(phase=Phase.ABORTED)
    ended = ended.model_copy(update={"status": ended.status.model_copy(update={"reason": "OptedOut"})})
    assert assess(state(target, [ended], pol=None, opted_out=True)).drive is not None
    served = ended.model_copy(update={"status": ended.status.model_copy(update={"traffic_applied": True})})
    for rollouts in ([served], [rollout(phase=Phase.ROLLED_BACK)], []):
        assert assess(state(target, rollouts, pol=None, opted_out=True)) == Assessment()


def test_a_policy_version_is_parsed_once_and_a_new_version_again() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "p", "namespace": "default", "uid": "memo", "resourceVersion": "7"},
        "spec": POLICY,
    }
    first = policy_view(obj)
    assert policy_view(obj) is first
    changed = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "8"}, "spec": {"strategy": "bad"}}
    view = policy_view(changed)
    assert view.spec is None and view.problems
    assert policy_view(obj) is first


def test_a_policy_changed_mid_rollout_is_reported_and_not_applied() -> None:
    running = rollout(phase=Phase.PROGRESSING)  # started with the policy's generation 1
    a = assess(state(rollouts=[running], pol=policy(generation=4)))
    assert a.drive is not None and a.drive.rollout is running
    (notice,) = [n for n in a.notices if n.reason == "PolicyChangedMidRollout"]
    assert "generation 4" in notice.message and "keeps generation 1" in notice.message
    assert not assess(state(rollouts=[running], pol=policy(generation=1))).notices
