"""What the platform admins grant namespaced policies, checked where a policy is read (an ungranted policy is
invalid: its Valid condition says which field and how to fix it, and no rollout starts with it), and the
ClusterMetricSources the admins wrote, answered from the informer's cache. Pure but for the cache read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rollout.analysis.granted import missing_source
from rollout.api.load import FieldProblem, parse_cluster_source
from rollout.api.policy import RolloutPolicySpec
from rollout.api.source import ClusterMetricSourceSpec
from rollout.controller.egress import Destinations
from rollout.kube.client import Obj

ADDRESS_FLAG = "--allow-policy-metric-address"


@dataclass(frozen=True)
class Grants:
    """What the admins allow namespaced policies beyond the controller's own Prometheus."""

    allow_own_address: bool = False
    destinations: Destinations = field(default_factory=Destinations)  # webhook and notification destinations


def grant_problems(spec: RolloutPolicySpec, grants: Grants) -> list[FieldProblem]:
    """The policy's fields that reach beyond what the admins granted."""
    found = [
        FieldProblem(
            f"spec.webhooks[{i}].url",
            problem,
            "ask the platform admins to allow the destination (rollout controller --webhook-allow), or "
            "call a receiver they already allow",
        )
        for i, hook in enumerate(spec.webhooks)
        if (problem := grants.destinations.url_problem(hook.url)) is not None
    ]
    found += [
        FieldProblem(
            f"spec.notifications[{i}].url",
            problem,
            "ask the platform admins to allow the destination (rollout controller --webhook-allow), or "
            "send to a receiver they already allow",
        )
        for i, note in enumerate(spec.notifications)
        if note.url is not None and (problem := grants.destinations.url_problem(note.url)) is not None
    ]
    prom = spec.metric_source.prometheus
    if grants.allow_own_address or spec.metric_source.ref is not None or prom.is_default():
        return found
    field = "spec.metricSource.prometheus" + (".address" if prom.address is not None else "")
    return [
        FieldProblem(
            field,
            "this controller does not let policies name their own Prometheus or credentials (the admins "
            f"grant sources; {ADDRESS_FLAG} is off)",
            "use metricSource.ref: <a ClusterMetricSource> (kubectl get clustermetricsources), or leave "
            "metricSource unset for the controller's Prometheus",
        ),
        *found,
    ]


class ClusterSources:
    """`GrantedLookup` over the ClusterMetricSource informer: parsed once per resourceVersion."""

    def __init__(self, get: Callable[[str], Obj | None]) -> None:
        self._get = get
        self._parsed: dict[str, tuple[str, ClusterMetricSourceSpec | str]] = {}

    def __call__(self, name: str) -> ClusterMetricSourceSpec | str:
        obj = self._get(name)
        if obj is None:
            self._parsed.pop(name, None)
            return missing_source(name)
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        known = self._parsed.get(name)
        if known is not None and known[0] == version:
            return known[1]
        spec, problems = parse_cluster_source(obj)
        found: ClusterMetricSourceSpec | str = (
            spec
            if spec is not None
            else f"metricSource.ref: ClusterMetricSource {name} is invalid ({problems[0]}); ask the admins"
        )
        self._parsed[name] = (version, found)
        return found
