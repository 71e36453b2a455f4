"""Knative Service / Route / Configuration documents: one case per webhook traffic rule (through
rollout.knative.traffic), the fields Knative does not have, revision names and containers."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.lint.findings import Severity
from tests.lint.helpers import at, configuration, edited, lint, lint_text, only, policy, route, rules, service

STD = policy("std")


def svc_traffic(*entries: Any) -> dict[str, Any]:
    return service(policy_name=None, traffic=list(entries))


def test_valid_service_route_configuration_are_clean() -> None:
    report = lint(
        STD,
        service(),
        configuration("shop"),
        route(
            "front",
            [
                {"configurationName": "shop", "percent": 90},
                {"revisionName": "shop-00001", "percent": 10, "tag": "old"},
            ],
        ),
    )
    assert report.findings == []


@pytest.mark.parametrize(
    ("obj", "rule", "path"),
    [
        (svc_traffic({"latestRevision": True, "percent": 90}), "knative/percent-sum", "spec.traffic"),
        (
            svc_traffic(
                {"revisionName": "hello-00001", "percent": 110}, {"latestRevision": True, "percent": -10}
            ),
            "knative/percent-range",
            "spec.traffic[0].percent",
        ),
        (
            svc_traffic({"latestRevision": True, "percent": 100, "tag": "Canary"}),
            "knative/tag-dns1035",
            "spec.traffic[0].tag",
        ),
        (
            svc_traffic(
                {"revisionName": "hello-00001", "percent": 100, "tag": "a"},
                {"latestRevision": True, "percent": 0, "tag": "a"},
            ),
            "knative/tag-unique",
            "spec.traffic[1].tag",
        ),
        (
            svc_traffic({"revisionName": "hello-00001", "latestRevision": True, "percent": 100}),
            "knative/latest-revision",
            "spec.traffic[0].latestRevision",
        ),
        (
            svc_traffic({"latestRevision": False, "percent": 100}),
            "knative/latest-revision",
            "spec.traffic[0].latestRevision",
        ),
        (
            svc_traffic({"configurationName": "hello", "percent": 100}),
            "knative/configuration-in-service",
            "spec.traffic[0].configurationName",
        ),
        (
            route("front", [{"revisionName": "shop-00001", "configurationName": "shop", "percent": 100}]),
            "knative/revision-xor-configuration",
            "spec.traffic[0].revisionName",
        ),
        (route("front", [{"percent": 100}]), "knative/revision-xor-configuration", "spec.traffic[0]"),
        (
            route("front", [{"revisionName": "shop 1", "percent": 100}]),
            "knative/revision-name",
            "spec.traffic[0].revisionName",
        ),
        (
            route("front", [{"configurationName": "-shop", "percent": 100}]),
            "knative/configuration-name",
            "spec.traffic[0].configurationName",
        ),
        (
            svc_traffic({"latestRevision": True, "percent": 100, "url": "http://hello.default.example.com"}),
            "knative/url-in-spec",
            "spec.traffic[0].url",
        ),
        (
            svc_traffic({"latestRevision": True, "percent": "100%"}),
            "knative/schema-type",
            "spec.traffic[0].percent",
        ),
        (svc_traffic("latest"), "knative/schema-type", "spec.traffic[0]"),
        (
            edited(service(policy_name=None), ("spec", "traffic"), {"percent": 100}),
            "knative/schema-type",
            "spec.traffic",
        ),
        (route("front", []), "knative/percent-sum", "spec.traffic"),
    ],
)
def test_webhook_traffic_rule(obj: dict[str, Any], rule: str, path: str) -> None:
    report = lint(obj)
    assert path in at(report, rule), report.findings
    assert all(f.severity == Severity.ERROR for f in only(report, rule))


@pytest.mark.parametrize("field", ["path", "domain"])
def test_traffic_entry_has_no_path_or_domain(field: str) -> None:
    report = lint(
        svc_traffic({"latestRevision": True, "percent": 100, field: "/v2" if field == "path" else "a.com"})
    )
    [finding] = only(report, "knative/unknown-field")
    assert finding.path == f"spec.traffic[0].{field}"
    assert "DomainMapping" in finding.hint


def test_url_mapping_in_a_traffic_entry_explains_there_is_no_path_routing() -> None:
    report = lint(
        svc_traffic({"latestRevision": True, "percent": 100, "url": {"domain": "a.com", "path": "/v2"}})
    )
    [finding] = [f for f in report.findings if f.path == "spec.traffic[0].url"]
    assert "no path routing" in finding.hint and "DomainMapping" in finding.hint


def test_webhook_findings_point_at_their_lines() -> None:
    text = """\
apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: front
spec:
  traffic:
    - revisionName: shop-00001
      percent: 60
      tag: stable
    - configurationName: shop
      percent: 30
      tag: stable
"""
    report = lint_text(text)
    lines = {(f.rule, f.line) for f in report.findings}
    assert lines == {("knative/percent-sum", 6), ("knative/tag-unique", 12)}


def test_service_traffic_may_only_name_its_own_revisions() -> None:
    report = lint(
        svc_traffic(
            {"revisionName": "hello-00001", "percent": 50},
            {"revisionName": "hello-v2", "percent": 40},
            {"revisionName": "other-00003", "percent": 10},
        )
    )
    assert at(report, "knative/foreign-revision") == ["spec.traffic[2].revisionName"]


def test_route_may_name_any_revision() -> None:
    assert lint(route("front", [{"revisionName": "anything-00001", "percent": 100}])).findings == []


@pytest.mark.parametrize(
    ("template_name", "expected"),
    [
        ("hello-v2", set()),
        ("hello2", {"knative/revision-name"}),
        ("v2", {"knative/revision-name"}),
        ("hello-V2", {"knative/revision-name"}),
    ],
)
def test_template_revision_name_needs_the_owner_prefix(template_name: str, expected: set[str]) -> None:
    obj = edited(service(policy_name=None), ("spec", "template", "metadata"), {"name": template_name})
    assert rules(lint(obj)) == expected


@pytest.mark.parametrize(
    ("path", "value", "rule", "where"),
    [
        (("spec", "url"), "http://x", "knative/unknown-field", "spec.url"),
        (("spec", "runLatest"), {}, "knative/unknown-field", "spec.runLatest"),
        (("spec", "template", "containers"), [], "knative/unknown-field", "spec.template.containers"),
        (
            ("spec", "template", "spec", "hostname"),
            "x",
            "knative/unknown-field",
            "spec.template.spec.hostname",
        ),
        (
            ("spec", "template", "spec", "containers", 0, "lifecycle"),
            {},
            "knative/unknown-field",
            "spec.template.spec.containers[0].lifecycle",
        ),
        (
            ("spec", "template", "spec", "containers"),
            [],
            "knative/containers",
            "spec.template.spec.containers",
        ),
        (
            ("spec", "template", "spec", "containers", 0, "image"),
            None,
            "knative/containers",
            "spec.template.spec.containers[0].image",
        ),
        (("spec", "template"), "nginx", "knative/template", "spec.template"),
        (("spec",), None, "knative/spec", "spec"),
        (("apiVersion",), "serving.knative.dev/v1alpha1", "knative/api-version", "apiVersion"),
        (("metadata", "name"), "1hello", "knative/name", "metadata.name"),
        (("metadata", "name"), "Hello", "manifest/metadata", "metadata.name"),
        (("metadata", "namespace"), "Prod", "manifest/metadata", "metadata.namespace"),
        (("metadata", "labels"), {"app": "x" * 70}, "manifest/metadata", "metadata.labels.app"),
    ],
)
def test_service_shape(path: tuple[Any, ...], value: Any, rule: str, where: str) -> None:
    report = lint(edited(service(policy_name=None), path, value))
    assert where in at(report, rule), report.findings


def test_configuration_has_no_traffic_and_route_no_template() -> None:
    conf = edited(configuration(), ("spec", "traffic"), [{"latestRevision": True, "percent": 100}])
    rt = edited(route(), ("spec", "template"), {})
    report = lint(conf, rt)
    hints = {f.path: f.hint for f in only(report, "knative/unknown-field")}
    assert "Route" in hints["spec.traffic"] and "Configuration" in hints["spec.template"]


def test_several_containers_need_exactly_one_port() -> None:
    two: list[dict[str, Any]] = [{"image": "app"}, {"image": "sidecar"}]
    obj = edited(service(policy_name=None), ("spec", "template", "spec", "containers"), two)
    assert at(lint(obj), "knative/containers") == ["spec.template.spec.containers"]
    two[0]["ports"] = [{"containerPort": 8080}]
    obj = edited(service(policy_name=None), ("spec", "template", "spec", "containers"), two)
    assert lint(obj).findings == []


def test_revision_documents_in_git_are_a_warning() -> None:
    rev = {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": {"name": "hello-00001"}}
    assert rules(lint(rev), Severity.WARNING) == {"knative/revision-in-git"}


def test_unknown_kinds_and_other_groups_are_ignored() -> None:
    others = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}},
        {"apiVersion": "serving.knative.dev/v1beta1", "kind": "DomainMapping", "metadata": {"name": "a.com"}},
        {"replicaCount": 3, "image": {"tag": "x"}},  # a Helm values file
    ]
    assert lint(*others).findings == []


def test_list_documents_are_expanded() -> None:
    bad = svc_traffic({"latestRevision": True, "percent": 50})
    report = lint({"apiVersion": "v1", "kind": "List", "items": [bad, "oops"]})
    assert at(report, "knative/percent-sum") == ["spec.traffic"]  # paths are within the object
    assert "manifest/list-item" in rules(report)
    [finding] = only(report, "knative/percent-sum")
    assert finding.line is not None and finding.line > 1
