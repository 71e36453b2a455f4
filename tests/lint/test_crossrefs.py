"""Rules across the linted set: the policy label, duplicates, name collisions, where the label goes."""

from __future__ import annotations

from rollout.lint.findings import Severity
from rollout.lint.linter import lint_texts
from tests.lint.helpers import (
    POLICY_LABEL,
    at,
    configuration,
    dump,
    edited,
    lint,
    only,
    policy,
    route,
    rules,
    service,
)


def test_label_finds_a_policy_in_another_file() -> None:
    report = lint_texts([("policies/std.yaml", dump(policy("std"))), ("apps/hello.yaml", dump(service()))])
    assert report.findings == [] and report.files == 2 and report.objects == 2


def test_missing_policy_is_an_error_with_a_suggestion() -> None:
    report = lint(policy("standard-canary"), service(policy_name="standard-canary2"))
    [finding] = report.findings
    assert finding.rule == "rollout/policy-not-found" and finding.severity == Severity.ERROR
    assert finding.path == f'metadata.labels["{POLICY_LABEL}"]'
    assert "standard-canary" in finding.hint


def test_missing_policy_without_any_policy_says_how_to_lint_together() -> None:
    [finding] = lint(service(policy_name="std")).findings
    assert "rollout lint" in finding.hint


def test_namespaces_must_match_unless_one_is_unset() -> None:
    in_prod = policy("std", namespace="prod")
    assert lint(in_prod, service(namespace="prod")).findings == []
    assert lint(in_prod, service()).findings == []  # the service has no namespace: same namespace
    assert lint(policy("std"), service(namespace="dev")).findings == []  # the policy has none
    assert rules(lint(in_prod, service(namespace="dev"))) == {"rollout/policy-not-found"}


def test_standalone_route_opts_in() -> None:
    assert lint(policy("std"), configuration(), route(policy_name="std")).findings == []
    assert rules(lint(configuration(), route(policy_name="nope"))) == {"rollout/policy-not-found"}


def test_label_on_a_configuration_or_the_template_or_as_annotation_is_misplaced() -> None:
    conf = edited(configuration(), ("metadata", "labels"), {POLICY_LABEL: "std"})
    tmpl = edited(
        service(policy_name=None), ("spec", "template", "metadata"), {"labels": {POLICY_LABEL: "std"}}
    )
    anno = edited(service("other", policy_name=None), ("metadata", "annotations"), {POLICY_LABEL: "std"})
    report = lint(policy("std"), conf, tmpl, anno)
    assert rules(report) == {"rollout/policy-label-place"}
    assert {f.severity for f in report.findings} == {Severity.WARNING}
    assert len(report.findings) == 3


def test_duplicate_objects_in_one_namespace() -> None:
    report = lint_texts([("a.yaml", dump(policy("std"), service())), ("b.yaml", dump(policy("std")))])
    [finding] = only(report, "manifest/duplicate")
    assert finding.file == "b.yaml" and "a.yaml:4" in finding.message
    assert lint(policy("std", namespace="a"), policy("std", namespace="b")).findings == []


def test_route_or_configuration_named_like_a_service_collides() -> None:
    report = lint(
        policy("std"),
        service("shop"),
        configuration("shop"),
        route("shop", [{"revisionName": "shop-00001", "percent": 100}]),
    )
    assert sorted(f.kind or "" for f in only(report, "knative/name-collision")) == ["Configuration", "Route"]
    assert (
        lint(
            policy("std"),
            service("shop", namespace="a"),
            configuration("shop") | {"metadata": {"name": "shop", "namespace": "b"}},
        ).findings
        == []
    )


def test_opted_in_service_with_traffic_or_rollout_duration_warns() -> None:
    obj = service(traffic=[{"latestRevision": True, "percent": 100}])
    obj = edited(obj, ("metadata", "annotations"), {"serving.knative.dev/rollout-duration": "300s"})
    report = lint(policy("std"), obj)
    assert rules(report, Severity.WARNING) == {"rollout/traffic-in-git", "rollout/rollout-duration"}
    assert at(report, "rollout/traffic-in-git") == ["spec.traffic"]
    assert rules(report, Severity.ERROR) == set()


def test_rollout_objects_do_not_belong_in_git() -> None:
    rollout = {"apiVersion": "knrollout.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}}
    other = {"apiVersion": "knrollout.dev/v1alpha1", "kind": "Canary", "metadata": {"name": "c"}}
    assert rules(lint(rollout, other)) == {"rollout/controller-owned", "rollout/unknown-kind"}
