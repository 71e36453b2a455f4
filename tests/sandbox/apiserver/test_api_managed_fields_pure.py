"""Field sets and managedFields bookkeeping as pure functions: the FieldsV1 encoding of keyed and set list
items, comparisons, conflict paths, and the cap on Update managers."""

from __future__ import annotations

from typing import Any

from rollout_lab.sandbox.apiserver import fieldpaths, managedfields
from rollout_lab.sandbox.apiserver.builtin_schema import configmap_schema

OWNED: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "cm",
        "namespace": "default",
        "uid": "x",
        "resourceVersion": "7",
        "finalizers": ["example.com/keep"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u1"}],
    },
    "data": {"a": "1"},
}


def test_keyed_and_set_items_and_the_dot_marker() -> None:
    fields = fieldpaths.field_set(OWNED, configmap_schema())
    assert fieldpaths.encode(fields) == {
        "f:data": {"f:a": {}},
        "f:metadata": {
            "f:finalizers": {'v:"example.com/keep"': {}},
            "f:ownerReferences": {'k:{"uid":"u1"}': {}},
        },
    }
    created = fieldpaths.compare(None, OWNED, configmap_schema()).changed()
    encoded = fieldpaths.encode(created)
    assert encoded["f:data"] == {".": {}, "f:a": {}}  # created: the map itself is owned too
    assert encoded["f:metadata"]["f:ownerReferences"] == {".": {}, 'k:{"uid":"u1"}': {}}
    assert fieldpaths.decode(encoded) == created
    assert "f:name" not in encoded["f:metadata"] and "f:apiVersion" not in encoded  # system fields


def test_compare_names_item_changes_and_conflicts_print_paths() -> None:
    changed = {**OWNED, "metadata": {**OWNED["metadata"], "ownerReferences": [{"uid": "u2", "name": "t"}]}}
    comparison = fieldpaths.compare(OWNED, changed, None)
    assert ("f:metadata", "f:ownerReferences", 'k:{"uid":"u2"}') in comparison.added
    assert ("f:metadata", "f:ownerReferences", 'k:{"uid":"u1"}') in comparison.removed
    assert comparison.modified == set()
    assert fieldpaths.path_string(("f:metadata", "f:ownerReferences", 'k:{"uid":"u2"}')) == (
        '.metadata.ownerReferences[uid="u2"]'
    )
    assert fieldpaths.path_string(("f:metadata", "f:finalizers", 'v:"f"')) == '.metadata.finalizers[="f"]'


def test_update_managers_beyond_ten_are_merged_into_ancient_changes() -> None:
    entries: list[managedfields.Entry] = []
    obj: dict[str, Any] = {"metadata": {"name": "cm"}, "data": {}}
    for i in range(12):
        new = {"metadata": {"name": "cm"}, "data": {**obj["data"], f"k{i}": "v"}}
        request = managedfields.Request(f"m{i:02d}", "v1", f"2024-01-01T00:00:{i:02d}Z", has_status=False)
        entries = managedfields.record_update(entries, obj, new, None, request)
        obj = new
    managers = sorted(e.manager for e in entries)
    assert len(managers) == 10 and "ancient-changes" in managers and "m00" not in managers
    ancient = next(e for e in entries if e.manager == "ancient-changes")
    assert {("f:data", "f:k0"), ("f:data", "f:k1"), ("f:data", "f:k2")} <= ancient.fields


def test_user_agent_prefix() -> None:
    assert managedfields.manager_from_user_agent("kubectl/v1.31.0 (linux/amd64) kubernetes/abc") == "kubectl"
    assert managedfields.manager_from_user_agent("python-requests/2.32.3") == "python-requests"
    assert managedfields.manager_from_user_agent("") == ""
    assert managedfields.manager_from_user_agent("x" * 200) == "x" * 128
