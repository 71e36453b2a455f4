"""The real Knative Serving CRD schemas (../shared/knative/crds, never copied into the repository), for
tests that compare lint's verdicts with what a Kubernetes API server would do with them."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KNATIVE_CRDS = ROOT.parent / "shared" / "knative" / "crds"
FILES = {"Service": "service.yaml", "Route": "route.yaml", "Configuration": "configuration.yaml"}

needs_knative_crds = pytest.mark.skipif(
    not KNATIVE_CRDS.is_dir(),
    reason=f"the real Knative CRDs are not at {KNATIVE_CRDS} (they are test data outside the repository)",
)


@cache
def schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((KNATIVE_CRDS / FILES[kind]).read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Paths (dotted, with [i]) where the CRD's OpenAPI schema rejects the object."""
    validator = jsonschema.Draft4Validator(schema(obj["kind"]))
    return sorted(_format(error.absolute_path) for error in validator.iter_errors(obj))


def _format(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def pruned_fields(obj: dict[str, Any]) -> list[str]:
    """Fields a structural schema prunes (drops, or rejects with strict field validation)."""
    return sorted(_format(p) for p in _pruned(schema(obj["kind"]), obj, ()))


def _pruned(node: dict[str, Any], value: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        additional = node.get("additionalProperties")
        preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
        for key, item in value.items():
            if key in properties:
                yield from _pruned(properties[key], item, (*path, key))
            elif isinstance(additional, dict):
                yield from _pruned(additional, item, (*path, key))
            elif not preserve and path != ("metadata",) and not (path == () and key == "metadata"):
                yield (*path, key)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            yield from _pruned(node["items"], item, (*path, index))
