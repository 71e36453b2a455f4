"""The Rollouts of one target: naming, order, which one is active, which candidate needs a new one, what
supersedes it, and which finished ones history no longer keeps. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollout.api.common import GROUP, format_time
from rollout.api.load import policy_hash
from rollout.api.policy import RolloutPolicySpec
from rollout.api.rollout import TERMINAL_PHASES, PolicyRef, Rollout, RolloutSpec, TargetRef
from rollout.api.source import Dialect
from rollout.controller.views import RevisionView, TargetView, revision_generation

TARGET_LABEL = f"{GROUP}/target"
TARGET_KIND_LABEL = f"{GROUP}/target-kind"
CANDIDATE_LABEL = f"{GROUP}/candidate"
GENERATION_LABEL = f"{GROUP}/candidate-generation"
ATTEMPT_LABEL = f"{GROUP}/attempt"


def rollout_name(target: TargetView | TargetRef, candidate: str, attempt: int) -> str:
    """Deterministic, so that a create retried after a crash is AlreadyExists. Revision and target names are
    DNS labels (no dots), so `{candidate}.{attempt}` (Service) and `{route}.{candidate}.{attempt}` (Route)
    never collide."""
    if target.kind == "Route":
        return f"{target.name}.{candidate}.{attempt}"
    return f"{candidate}.{attempt}"


@dataclass(frozen=True)
class ControllerDefaults:
    """What policies inherit when they leave the metric source unset, and whether the admins let them name
    their own Prometheus (`rollout controller` flags)."""

    prometheus_url: str | None = None
    dialect: Dialect | None = None
    allow_policy_metric_address: bool = False


def order_key(rollout: Rollout) -> tuple[int, int, str]:
    """Rollouts of one target, oldest first: by candidate generation, then attempt."""
    labels = rollout.metadata.labels
    try:
        gen = int(labels.get(GENERATION_LABEL, ""))
    except ValueError:
        gen = -1
    return (gen, rollout.spec.attempt, rollout.metadata.name)


def latest(rollouts: Sequence[Rollout]) -> Rollout | None:
    return max(rollouts, key=order_key, default=None)


def active(rollouts: Sequence[Rollout]) -> Rollout | None:
    """The running rollout (at most one runs per target; if several claim to, the newest is driven and the
    others are superseded by it)."""
    running = [r for r in rollouts if r.status.phase not in TERMINAL_PHASES]
    return max(running, key=order_key, default=None)


def is_terminal(rollout: Rollout) -> bool:
    return rollout.status.phase in TERMINAL_PHASES


def same_configuration(a: RevisionView | None, b: RevisionView | None) -> bool:
    """Two revisions run the same template (Knative makes a new revision when git reverts the template):
    the same spec AND the same labels and annotations from the template (an annotation-only change, e.g.
    `autoscaling.knative.dev/min-scale`, is a new configuration to roll out). What Knative writes on its
    revisions itself (routes, creator, routingState, its serving.knative.dev/ labels) does not count."""
    return (
        a is not None
        and b is not None
        and bool(a.spec)
        and a.spec == b.spec
        and a.template_metadata == b.template_metadata
    )


@dataclass(frozen=True)
class CandidateCheck:
    superseded_by: str | None = None
    template_reverted: bool = False


def check_candidate(
    rollout: Rollout, latest_created: str | None, revisions: Mapping[str, RevisionView]
) -> CandidateCheck:
    """Whether the newest revision of the target replaces the rollout's candidate."""
    spec = rollout.spec
    newest = latest_created
    if newest is None or newest == spec.candidate_revision:
        return CandidateCheck()
    if newest == spec.stable_revision or same_configuration(
        revisions.get(newest), revisions.get(spec.stable_revision)
    ):
        return CandidateCheck(template_reverted=True)
    new_gen = revision_generation(newest, revisions)
    cand_gen = revision_generation(spec.candidate_revision, revisions)
    if new_gen is not None and cand_gen is not None and new_gen <= cand_gen:
        return CandidateCheck()  # an older revision reported late: not a replacement
    return CandidateCheck(superseded_by=newest)


def candidate_to_start(
    stable: str,
    latest_created: str | None,
    revisions: Mapping[str, RevisionView],
    rollouts: Sequence[Rollout],
) -> str | None:
    """The newest revision, when it is not stable, has no Rollout yet, and is not the stable configuration
    again (a reverted template)."""
    if latest_created is None or latest_created == stable:
        return None
    if any(r.spec.candidate_revision == latest_created for r in rollouts):
        return None
    if same_configuration(revisions.get(latest_created), revisions.get(stable)):
        return None
    newest_gen = revision_generation(latest_created, revisions)
    stable_gen = revision_generation(stable, revisions)
    if newest_gen is not None and stable_gen is not None and newest_gen < stable_gen:
        return None  # stable is newer than the latest created one: nothing to roll out
    return latest_created


def expired_history(rollouts: Sequence[Rollout], limit: int) -> list[Rollout]:
    """Finished rollouts beyond the newest `limit` (the latest rollout is always kept)."""
    ordered = sorted(rollouts, key=order_key)
    newest = ordered[-1] if ordered else None
    finished = [r for r in ordered if is_terminal(r) and r is not newest]
    keep = max(limit - (1 if newest is not None and is_terminal(newest) else 0), 0)
    return finished[: max(len(finished) - keep, 0)]


def new_rollout(
    target: TargetView,
    stable: str,
    candidate: str,
    policy_name: str,
    policy_generation: int | None,
    spec: RolloutPolicySpec,
    candidate_generation: int | None,
    attempt: int = 1,
) -> dict[str, Any]:
    """The Rollout object to create (the API server adds uid, resourceVersion, status)."""
    target_ref = TargetRef(kind="Route" if target.kind == "Route" else "Service", name=target.name)
    rollout_spec = RolloutSpec(
        target=target_ref,
        stable_revision=stable,
        candidate_revision=candidate,
        policy=PolicyRef(name=policy_name, generation=policy_generation, hash=policy_hash(spec), spec=spec),
        attempt=attempt,
    )
    labels = {
        TARGET_LABEL: target.name,
        TARGET_KIND_LABEL: target.kind,
        CANDIDATE_LABEL: candidate,
        ATTEMPT_LABEL: str(attempt),
    }
    if candidate_generation is not None:
        labels[GENERATION_LABEL] = str(candidate_generation)
    return {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": rollout_name(target, candidate, attempt),
            "namespace": target.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": target.kind,
                    "name": target.name,
                    "uid": target.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": rollout_spec.to_wire(),
    }


def retry_of(
    rollout: Rollout,
    target: TargetView,
    spec: RolloutPolicySpec | None,
    policy_generation: int | None,
    now: datetime,
    attempt: int,
) -> dict[str, Any]:
    """The next attempt of a finished rollout: same stable and candidate; the current policy if it is valid
    (a retry usually follows a policy fix), else the one the previous attempt froze."""
    labels = rollout.metadata.labels
    gen = labels.get(GENERATION_LABEL)
    body = new_rollout(
        target,
        rollout.spec.stable_revision,
        rollout.spec.candidate_revision,
        rollout.spec.policy.name,
        policy_generation if spec is not None else rollout.spec.policy.generation,
        spec if spec is not None else rollout.spec.policy.spec,
        int(gen) if gen and gen.isdigit() else None,
        attempt=attempt,
    )
    body["metadata"].setdefault("annotations", {})[f"{GROUP}/retry-of"] = rollout.metadata.name
    body["metadata"]["annotations"][f"{GROUP}/retried-at"] = format_time(now)
    return body
