"""Knative's webhook rules for spec.traffic: one test per rule, with Knative's own message."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.knative.traffic import (
    default_traffic,
    dns1035_label_errors,
    format_field_errors,
    validate_traffic,
    webhook_denial_message,
)


def rules(entries: Any, *, in_service: bool = True) -> set[str]:
    return {f.rule for f in validate_traffic(entries, in_service=in_service)}


def message(entries: Any, *, in_service: bool = True) -> str:
    return format_field_errors(validate_traffic(entries, in_service=in_service))


# --- valid layouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        None,
        [],
        [{"latestRevision": True, "percent": 100}],
        [{"percent": 100}],  # latestRevision defaulted to true
        [{"revisionName": "hello-00001", "percent": 100}],
        [
            {"revisionName": "hello-00001", "percent": 90, "tag": "stable"},
            {"revisionName": "hello-00002", "percent": 10, "tag": "canary"},
            {"latestRevision": True, "percent": 0, "tag": "latest"},
        ],
        # 0% tag entries are fine, with or without a percent field
        [{"revisionName": "hello-00001", "percent": 100}, {"revisionName": "hello-00002", "tag": "canary"}],
        # the same revision twice is allowed
        [{"revisionName": "hello-00001", "percent": 50}, {"revisionName": "hello-00001", "percent": 50}],
    ],
)
def test_valid_service_layouts(entries: Any) -> None:
    assert validate_traffic(entries, in_service=True) == []


def test_valid_route_layout_with_configuration() -> None:
    entries = [
        {"configurationName": "hello", "percent": 80},
        {"revisionName": "hello-00001", "percent": 20, "tag": "old"},
    ]
    assert validate_traffic(entries, in_service=False) == []


# --- one test per rule -------------------------------------------------------------------------------


def test_percents_must_sum_to_100() -> None:
    entries = [{"revisionName": "a-1", "percent": 50}, {"latestRevision": True, "percent": 40}]
    assert message(entries) == "Traffic targets sum to 90, want 100: spec.traffic"
    assert rules(entries) == {"percent-sum"}


def test_route_without_traffic_sums_to_zero() -> None:
    assert message([], in_service=False) == "Traffic targets sum to 0, want 100: spec.traffic"


def test_percent_out_of_range() -> None:
    entries = [{"revisionName": "a-1", "percent": 101}, {"latestRevision": True, "percent": -1}]
    assert message(entries) == (
        "expected 0 <= -1 <= 100: spec.traffic[1].percent\nexpected 0 <= 101 <= 100: spec.traffic[0].percent"
    )


def test_tag_must_be_dns1035_label() -> None:
    findings = validate_traffic(
        [{"latestRevision": True, "percent": 100, "tag": "Canary_1"}], in_service=True
    )
    assert [f.field for f in findings] == ["spec.traffic[0].tag"]
    # Knative reports the path as tag[index] under traffic, and quotes Kubernetes' DNS-1035 message
    assert format_field_errors(findings) == (
        "invalid value: not a DNS 1035 label: [a DNS-1035 label must consist of lower case alphanumeric "
        "characters or '-', start with an alphabetic character, and end with an alphanumeric character "
        "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]: "
        "spec.traffic.tag[0]"
    )


def test_tag_too_long() -> None:
    assert dns1035_label_errors("a" * 64) == ["must be no more than 63 characters"]
    assert dns1035_label_errors("a" * 63) == []


def test_tags_must_be_unique() -> None:
    entries = [
        {"revisionName": "a-1", "percent": 50, "tag": "blue"},
        {"revisionName": "a-2", "percent": 50, "tag": "blue"},
    ]
    assert message(entries) == 'Multiple definitions for "blue": spec.traffic[0].tag, spec.traffic[1].tag'


def test_revision_and_configuration_are_exclusive_in_a_route() -> None:
    entries = [{"revisionName": "a-1", "configurationName": "a", "percent": 100}]
    assert message(entries, in_service=False) == (
        "expected exactly one, got both: spec.traffic[0].configurationName, spec.traffic[0].revisionName"
    )


def test_route_entry_needs_revision_or_configuration() -> None:
    entries = [{"percent": 100}]
    assert message(entries, in_service=False) == (
        "expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName"
    )


def test_configuration_name_forbidden_in_a_service() -> None:
    entries = [{"configurationName": "hello", "percent": 100}]
    assert message(entries) == "must not set the field(s): spec.traffic[0].configurationName"
    assert rules(entries) == {"configuration-in-service"}


def test_latest_revision_true_with_revision_name() -> None:
    entries = [{"revisionName": "hello-00001", "latestRevision": True, "percent": 100}]
    assert message(entries) == (
        'may not set revisionName "hello-00001" when latestRevision is true: spec.traffic[0].latestRevision'
    )


def test_latest_revision_false_without_revision_name() -> None:
    entries = [{"latestRevision": False, "percent": 100}]
    assert (
        message(entries)
        == 'may not set revisionName "" when latestRevision is false: spec.traffic[0].latestRevision'
    )


def test_url_rejected_in_spec() -> None:
    entries = [
        {"latestRevision": True, "percent": 100, "tag": "x", "url": "http://x-hello.default.example.com"}
    ]
    assert message(entries) == "must not set the field(s): spec.traffic[0].url"


def test_invalid_revision_name() -> None:
    entries = [{"revisionName": "-bad", "percent": 100}]
    text = message(entries)
    assert text.startswith('invalid key name "-bad": spec.traffic[0].revisionName\nname part must consist of')


def test_unknown_field_such_as_path() -> None:
    findings = validate_traffic([{"latestRevision": True, "percent": 100, "path": "/v2"}], in_service=True)
    assert [(f.field, f.rule, f.source) for f in findings] == [
        ("spec.traffic[0].path", "unknown-field", "schema")
    ]
    assert findings[0].message == 'unknown field "spec.traffic[0].path"'
    assert "DomainMapping" in findings[0].hint and "Knative-Serving-Tag" in findings[0].hint


def test_wrong_types_are_schema_findings() -> None:
    findings = validate_traffic([{"latestRevision": True, "percent": "100%"}], in_service=True)
    by_rule = {f.rule: f for f in findings}
    assert (
        by_rule["schema-type"].message == 'spec.traffic[0].percent in body must be of type integer: "string"'
    )
    # the bad percent counts as absent, so the sum rule fires as well
    assert "percent-sum" in by_rule


def test_not_a_list() -> None:
    findings = validate_traffic({"percent": 100}, in_service=True)
    assert [f.rule for f in findings] == ["schema-type"]


def test_several_errors_are_merged_and_sorted_like_knative() -> None:
    entries = [
        {"configurationName": "x", "percent": 30},
        {"configurationName": "y", "percent": 30, "tag": "a"},
        {"latestRevision": True, "percent": 30, "tag": "a"},
    ]
    assert webhook_denial_message(validate_traffic(entries, in_service=True)) == (
        'admission webhook "validation.webhook.serving.knative.dev" denied the request: validation failed: '
        'Multiple definitions for "a": spec.traffic[1].tag, spec.traffic[2].tag\n'
        "Traffic targets sum to 90, want 100: spec.traffic\n"
        "must not set the field(s): spec.traffic[0].configurationName, spec.traffic[1].configurationName"
    )


def test_every_finding_names_a_field_and_a_fix() -> None:
    entries = [{"revisionName": "A", "latestRevision": True, "percent": 120, "tag": "-x", "url": "u"}]
    findings = validate_traffic(entries, in_service=True)
    assert len(findings) >= 4
    for finding in findings:
        assert finding.field.startswith("spec.traffic")
        assert finding.hint


def test_custom_field_prefix() -> None:
    findings = validate_traffic([{"percent": 50}], in_service=True, field="spec.steps[2].traffic")
    assert [f.field for f in findings] == ["spec.steps[2].traffic"]


# --- defaulting --------------------------------------------------------------------------------------


def test_service_without_traffic_defaults_to_latest() -> None:
    assert default_traffic(None, in_service=True) == [{"latestRevision": True, "percent": 100}]
    assert default_traffic([], in_service=True) == [{"latestRevision": True, "percent": 100}]
    assert default_traffic([], in_service=False) == []


def test_latest_revision_defaulted_from_revision_name() -> None:
    given = [{"revisionName": "a-1", "percent": 60}, {"percent": 40, "tag": "next"}]
    assert default_traffic(given, in_service=True) == [
        {"revisionName": "a-1", "percent": 60, "latestRevision": False},
        {"percent": 40, "tag": "next", "latestRevision": True},
    ]
    assert "latestRevision" not in given[0]  # input not mutated


def test_explicit_latest_revision_is_kept() -> None:
    assert default_traffic([{"revisionName": "a", "latestRevision": True}], in_service=True)[0][
        "latestRevision"
    ]
