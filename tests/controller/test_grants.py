"""What the admins grant, checked where a policy is read; ClusterMetricSources looked up from the cache."""

from __future__ import annotations

from typing import Any

from rollout.api.policy import RolloutPolicySpec
from rollout.api.source import ClusterMetricSourceSpec
from rollout.controller.egress import Destinations
from rollout.controller.grants import ClusterSources, Grants, grant_problems

BASE: dict[str, Any] = {"strategy": {"canary": {"steps": [{"weight": 50}]}}}


def spec(**extra: Any) -> RolloutPolicySpec:
    return RolloutPolicySpec.model_validate({**BASE, **extra}, context={"wire": True})


def paths(found: list[Any]) -> list[str]:
    return [p.path for p in found]


def test_a_policys_own_prometheus_needs_the_admins_flag() -> None:
    own = spec(metricSource={"prometheus": {"address": "http://prometheus.team-a:9090"}})
    (problem,) = grant_problems(own, Grants())
    assert problem.path == "spec.metricSource.prometheus.address"
    assert "--allow-policy-metric-address" in problem.message and "metricSource.ref" in problem.hint
    assert grant_problems(own, Grants(allow_own_address=True)) == []
    assert grant_problems(spec(metricSource={"ref": "monitoring"}), Grants()) == []
    assert grant_problems(spec(), Grants()) == []  # the controller's own Prometheus
    timeout_only = spec(metricSource={"prometheus": {"timeout": "5s"}})
    assert grant_problems(timeout_only, Grants()) == []


def test_webhooks_to_ungranted_destinations_make_the_policy_invalid() -> None:
    hooks = [
        {"name": "ok", "type": "step", "url": "http://hooks.team-a.svc.cluster.local/x"},
        {"name": "meta", "type": "step", "url": "http://169.254.169.254/latest"},
        {"name": "other", "type": "postRollout", "url": "https://evil.example.org/"},
    ]
    grants = Grants(destinations=Destinations.parse(["*.svc.cluster.local"]))
    found = grant_problems(spec(webhooks=hooks), grants)
    assert paths(found) == ["spec.webhooks[1].url", "spec.webhooks[2].url"]
    assert "metadata" in found[0].message and "--webhook-allow" in found[1].hint
    assert paths(grant_problems(spec(webhooks=hooks[:1]), Grants())) == [
        "spec.webhooks[0].url"
    ]  # none allowed


def test_notifications_to_ungranted_destinations_make_the_policy_invalid() -> None:
    notes = [
        {"name": "ok", "type": "webhook", "url": "https://hooks.example.com/x"},
        {"name": "elsewhere", "type": "cloudEvents", "url": "http://evil.example.net/ce"},
        {"name": "meta", "type": "webhook", "url": "http://169.254.169.254/latest"},
        {"name": "chat", "type": "slack", "urlFrom": {"name": "hooks", "key": "slack"}},  # checked when sent
    ]
    grants = Grants(destinations=Destinations.parse(["hooks.example.com"]))
    found = grant_problems(spec(notifications=notes), grants)
    assert paths(found) == ["spec.notifications[1].url", "spec.notifications[2].url"]
    assert "link-local or cloud metadata" in found[1].message


def test_cluster_sources_are_parsed_once_per_version_and_explain_what_is_wrong() -> None:
    store: dict[str, dict[str, Any]] = {
        "good": {
            "metadata": {"name": "good", "resourceVersion": "1"},
            "spec": {"prometheus": {"address": "http://p:9090"}, "dialect": "kourier"},
        },
        "bad": {
            "metadata": {"name": "bad", "resourceVersion": "1"},
            "spec": {
                "prometheus": {
                    "address": "http://p",
                    "bearerToken": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            },
        },
    }
    lookup = ClusterSources(store.get)
    good = lookup("good")
    assert isinstance(good, ClusterMetricSourceSpec) and good.dialect is not None
    assert lookup("good") is good  # same version: parsed once
    bad = lookup("bad")
    assert isinstance(bad, str) and "secretNamespace" in bad
    missing = lookup("nosuch")
    assert isinstance(missing, str) and "kubectl get clustermetricsources" in missing
