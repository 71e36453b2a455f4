"""The real Knative Serving CRDs (../shared/knative/crds/, read-only test fixtures) as validators.

`check(kind, obj)` validates an object against the CRD's openAPIV3Schema with jsonschema, and also reports
fields the schema does not declare (a real API server would silently prune those: an object our simulator
writes must not rely on them).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

CRD_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "knative" / "crds"
FILES = {
    "Service": "service.yaml",
    "Configuration": "configuration.yaml",
    "Revision": "revision.yaml",
    "Route": "route.yaml",
}


def require_crds() -> None:
    if not CRD_DIR.is_dir():
        pytest.skip(f"the real Knative CRDs are not at {CRD_DIR} (../shared/knative/crds next to the repo)")


@cache
def schema(kind: str) -> dict[str, Any]:
    document = yaml.safe_load((CRD_DIR / FILES[kind]).read_text())
    for version in document["spec"]["versions"]:
        if version["name"] == "v1":
            return dict(version["schema"]["openAPIV3Schema"])
    raise AssertionError(f"no v1 in {FILES[kind]}")


def undeclared(value: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """Paths of fields in `value` that `node` (a structural schema) does not declare."""
    found: list[str] = []
    if isinstance(value, dict) and node.get("type") == "object":
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return found
        props = node.get("properties")
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                found += undeclared(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += undeclared(item, extra, f"{path}.{key}")
            elif props is not None:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            found += undeclared(item, node["items"], f"{path}[{index}]")
    return found


def check(obj: dict[str, Any]) -> list[str]:
    """Problems of `obj` against the real CRD of its kind (empty when it conforms)."""
    import jsonschema

    root = schema(str(obj["kind"]))
    validator = jsonschema.Draft7Validator(root)
    problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    problems += [f"undeclared field {p}" for p in undeclared(obj, root)]
    return problems
