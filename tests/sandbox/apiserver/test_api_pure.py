"""Unit tests of the pure pieces: selectors, JSONPath, patches, schemas, tables, paging, routing."""

from __future__ import annotations

from typing import Any

import pytest

from rollout_lab.sandbox.apiserver import jsonpath, patches, routing
from rollout_lab.sandbox.apiserver.catalog import default_registry
from rollout_lab.sandbox.apiserver.paging import Snapshots
from rollout_lab.sandbox.apiserver.schema import apply_schema
from rollout_lab.sandbox.apiserver.selectors import parse_field_selector, parse_label_selector
from rollout_lab.sandbox.apiserver.tables import human_duration
from rollout_lab.sandbox.store_api import ApiError


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1, 2)", {"a": "2"}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("a>3,b", {"a": "4", "b": "x"}, True),
        ("a<3", {"a": "x"}, False),
        ("example.com/team=web , tier", {"example.com/team": "web", "tier": "1"}, True),
        ("a=", {"a": ""}, True),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is matches


@pytest.mark.parametrize(
    "selector", ["a in 1", "a in ()", "=a", "a=b=c", "a,", "a in (b", "Bad Key=1", "a=(b)"]
)
def test_malformed_label_selectors(selector: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)
    assert err.value.code == 400


def test_field_selector_escapes_and_negation() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b,spec.x!=1")
    assert sel.matches({"metadata.name": "a,b", "spec.x": "2"})
    assert not sel.matches({"metadata.name": "a,b", "spec.x": "1"})
    assert sel.exact("metadata.name") == "a,b"
    with pytest.raises(ApiError):
        parse_field_selector("metadata.name")


CONDITIONS = {
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}
}


@pytest.mark.parametrize(
    ("path", "obj", "expected"),
    [
        (".status.conditions[?(@.type=='Ready')].status", CONDITIONS, ["True"]),
        (".status.conditions[?(@.type!='Ready')].type", CONDITIONS, ["Other"]),
        (".status.conditions[*].type", CONDITIONS, ["Ready", "Other"]),
        (".status.conditions[1].status", CONDITIONS, ["False"]),
        (".status.conditions[-1].status", CONDITIONS, ["False"]),
        (".status.conditions[0:1].type", CONDITIONS, ["Ready"]),
        (".metadata.labels['serving\\.knative\\.dev/configuration']", {"metadata": {"labels": {"serving.knative.dev/configuration": "c"}}}, ["c"]),
        ("{.spec.x}", {"spec": {"x": 0}}, [0]),
        (".spec.missing", {"spec": {}}, []),
    ],
)  # fmt: skip
def test_jsonpath(path: str, obj: dict[str, Any], expected: list[Any]) -> None:
    assert jsonpath.find(path, obj) == expected


def test_merge_patch_rfc7386_examples() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert patches.merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert patches.merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert patches.merge_patch({"a": 1}, {"b": {"c": None}}) == {"a": 1, "b": {}}


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    out = patches.json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "move", "from": "/c", "path": "/d"},
            {"op": "copy", "from": "/d", "path": "/e"},
            {"op": "replace", "path": "/e", "value": 5},
            {"op": "remove", "path": "/a/b/1"},
            {"op": "test", "path": "/a/b", "value": [0, 2, 3]},
        ],
    )
    assert out == {"a": {"b": [0, 2, 3]}, "d": 1, "e": 5}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}, "the input is not modified"
    for bad in (
        [{"op": "test", "path": "/c", "value": 2}],
        [{"op": "remove", "path": "/x"}],
        [{"op": "replace", "path": "/a/b/9", "value": 1}],
        [{"op": "add", "path": "/x/y", "value": 1}],
    ):
        with pytest.raises(ApiError) as err:
            patches.json_patch(doc, bad)
        assert err.value.code == 422


def test_strategic_merge_patch() -> None:
    live = {
        "metadata": {
            "finalizers": ["a"],
            "ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}],
        },
        "data": {"k": "v"},
    }
    out = patches.strategic_merge_patch(
        live,
        {
            "metadata": {
                "finalizers": ["b"],
                "ownerReferences": [{"uid": "2", "name": "z"}, {"uid": "1", "$patch": "delete"}],
                "$setElementOrder/finalizers": ["a", "b"],
            },
            "data": {"$patch": "replace", "n": "1"},
        },
    )
    assert out == {"metadata": {"finalizers": ["a", "b"], "ownerReferences": [{"uid": "2", "name": "z"}]},
                   "data": {"n": "1"}}  # fmt: skip


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "format": "int32"},
                "nullable": {"type": "string", "nullable": True},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "nested": {"type": "object", "properties": {"d": {"type": "string", "default": "x"}}},
            },
        }
    },
}


def test_schema_nulls_pruning_defaults_and_types() -> None:
    obj = {
        "metadata": {"name": "x", "bogus": 1},
        "spec": {"n": None, "nullable": None, "nested": {}, "zzz": 1},
    }
    result = apply_schema(SCHEMA, obj)
    assert obj == {"metadata": {"name": "x"}, "spec": {"nullable": None, "nested": {"d": "x"}}}
    assert sorted(result.pruned) == ["metadata.bogus", "spec.zzz"]
    assert result.causes == []
    bad = {"spec": {"n": 2**40, "port": 1.5, "items": ["a", "a"], "labels": {"k": 1}}}
    fields = sorted(c["field"] for c in apply_schema(SCHEMA, bad).causes)
    assert fields == ["spec.items[1]", "spec.labels.k", "spec.n", "spec.port"]


def test_schema_validation_ratchets_unchanged_fields_but_not_transition_rules() -> None:
    """Kubernetes (KEP-4008, GA in 1.33) ignores errors on fields an update left unchanged, so that a
    stricter schema does not block unrelated writes; rules that read oldSelf still judge every update."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer", "maximum": 3},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "pinned": {
                        "type": "object",
                        "properties": {"v": {"type": "integer"}},
                        "x-kubernetes-validations": [{"rule": "self.v < oldSelf.v", "message": "must drop"}],
                    },
                },
            }
        },
    }

    def errors(new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
        return sorted(c["field"] for c in apply_schema(schema, new, old).causes)

    stored = {"spec": {"size": 9, "mode": "a", "pinned": {"v": 1}}}  # valid once, before the schema tightened
    assert errors({"spec": {"size": 9, "mode": "a"}}, None) == ["spec.size"]  # a create checks everything
    assert errors({"spec": {"size": 9, "mode": "b"}}, stored) == []  # size unchanged: ratcheted
    assert errors({"spec": {"size": 8, "mode": "b"}}, stored) == ["spec.size"]  # changed: checked
    assert errors({"spec": {"size": 9, "mode": "c"}}, stored) == ["spec.mode"]
    # the transition rule's subtree is unchanged, yet the rule runs (and fails: v did not drop)
    assert errors({"spec": {"size": 9, "mode": "b", "pinned": {"v": 1}}}, stored) == ["spec.pinned"]
    assert errors({"spec": {"size": 9, "mode": "b", "pinned": {"v": 0}}}, stored) == []


def test_human_duration() -> None:
    cases = {
        0: "0s",
        119: "119s",
        125: "2m5s",
        600: "10m",
        3 * 3600: "3h",
        5 * 3600 + 60: "5h1m",
        50 * 3600: "2d2h",
    }
    for seconds, text in cases.items():
        assert human_duration(seconds) == text
    assert human_duration(400 * 86400) == "400d"
    assert human_duration(3 * 365 * 86400) == "3y"


def test_paging_snapshots_expire() -> None:
    now = [0.0]
    snaps = Snapshots(capacity=1, ttl=10, clock=lambda: now[0])
    items = [{"metadata": {"name": str(i)}} for i in range(5)]
    page = snaps.first(items, "7", 2)
    assert [i["metadata"]["name"] for i in page.items] == ["0", "1"] and page.remaining == 3
    assert page.continue_token is not None
    second = snaps.resume(page.continue_token, 2)
    assert [i["metadata"]["name"] for i in second.items] == ["2", "3"]
    assert second.continue_token is not None
    now[0] = 11
    with pytest.raises(ApiError) as err:
        snaps.resume(second.continue_token, 2)
    assert err.value.code == 410
    with pytest.raises(ApiError) as bad:
        snaps.resume("not-a-token", 2)
    assert bad.value.code == 400


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("api", "v1/namespaces", ("namespaces", None, None, None)),
        ("api", "v1/namespaces/x", ("namespaces", None, "x", None)),
        ("api", "v1/namespaces/x/status", ("namespaces", None, "x", "status")),
        ("api", "v1/namespaces/x/configmaps", ("configmaps", "x", None, None)),
        ("api", "v1/configmaps", ("configmaps", None, None, None)),
        ("apis", "serving.knative.dev/v1/namespaces/d/services/s/status", ("services", "d", "s", "status")),
        ("apis", "serving.knative.dev/v1/watch/namespaces/d/services", ("services", "d", None, None)),
    ],
)
def test_routing(prefix: str, path: str, expected: tuple[str, str | None, str | None, str | None]) -> None:
    target = routing.parse(default_registry(), prefix, path)
    assert isinstance(target, routing.Target)
    assert (target.spec.rt.plural, target.namespace, target.name, target.subresource) == expected


@pytest.mark.parametrize(
    ("prefix", "path"),
    [("api", "v2/pods"), ("api", "v1/configmaps/x"), ("apis", "serving.knative.dev/v1/services/a/scale"),
     ("api", "v1/namespaces/d/configmaps/c/status"), ("apis", "nope.dev/v1/things")],
)  # fmt: skip
def test_routing_not_found(prefix: str, path: str) -> None:
    with pytest.raises(ApiError) as err:
        routing.parse(default_registry(), prefix, path)
    assert err.value.code == 404
