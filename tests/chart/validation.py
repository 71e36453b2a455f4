"""Validate Kubernetes objects the way a strict API server would, offline.

- Built-in kinds: kubernetes-validate's strict schemas (unknown fields are errors) for KUBE_VERSION.
- prometheus-operator kinds (ServiceMonitor, PodMonitor, PrometheusRule): the pydantic models that
  cloudcoil-models-prometheus-operator generates from prometheus-operator's CRDs. Those models drop unknown
  fields silently, so an object is also compared with its own round trip: a field that does not survive
  is a field the CRD does not have.
- Custom resources with a CRD at hand (our knrollout.dev kinds, or any CRD passed in): the CRD's
  openAPIV3Schema with unknown fields forbidden where the schema lists properties, as the API server's
  strict field validation does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate

from tests.chart.rendering import KUBE_VERSION, Obj


@cache
def monitoring_models() -> dict[str, Any]:
    # imported on first use: the generated module is large and slow to import
    from cloudcoil.models.prometheus_operator import v1 as monitoring_v1

    return {
        "ServiceMonitor": monitoring_v1.ServiceMonitor,
        "PodMonitor": monitoring_v1.PodMonitor,
        "PrometheusRule": monitoring_v1.PrometheusRule,
    }


class Invalid(AssertionError):
    """An object a strict API server would reject; the message names the object and the field."""


def name_of(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}"


def validate_builtin(obj: Obj) -> None:
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        raise Invalid(f"{name_of(obj)}: {path}: {e.message}") from e


def _lost_fields(given: Any, kept: Any, path: str = "") -> list[str]:
    """Paths present in `given` but missing from `kept` (its round trip through a model)."""
    lost: list[str] = []
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        for key, value in given.items():
            if key not in kept:
                lost.append(f"{path}.{key}")
            else:
                lost.extend(_lost_fields(value, kept[key], f"{path}.{key}"))
    elif isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        for i, (a, b) in enumerate(zip(given, kept, strict=True)):
            lost.extend(_lost_fields(a, b, f"{path}[{i}]"))
    return lost


def validate_monitoring(obj: Obj) -> None:
    model = monitoring_models()[obj["kind"]]
    try:
        parsed = model.model_validate(obj)
    except Exception as e:  # pydantic.ValidationError, with every failing field
        raise Invalid(f"{name_of(obj)}: {e}") from e
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    lost = _lost_fields(obj, kept)
    if lost:
        raise Invalid(f"{name_of(obj)}: unknown fields {', '.join(lost)}")


def strict_schema(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema that rejects unknown fields (except where the CRD keeps them)."""
    out = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for child in node.get("properties", {}).values():
            visit(child)
        visit(node.get("items"))
        if isinstance(node.get("additionalProperties"), dict):
            visit(node["additionalProperties"])

    visit(out)
    # metadata is the API server's business: any ObjectMeta is fine here
    out.setdefault("properties", {})["metadata"] = {"type": "object"}
    return out


def crd_schema(crds: Iterable[Obj], api_version: str, kind: str) -> Any:
    group, _, version = api_version.rpartition("/")
    for crd in crds:
        spec = crd["spec"]
        if spec["group"] != group or spec["names"]["kind"] != kind:
            continue
        for v in spec["versions"]:
            if v["name"] == version:
                return strict_schema(v["schema"]["openAPIV3Schema"])
    raise Invalid(f"no CRD serves {kind} in {api_version}")


def validate_custom(obj: Obj, crds: Iterable[Obj]) -> None:
    schema = crd_schema(crds, obj["apiVersion"], obj["kind"])
    # OpenAPI 3.0 schemas use draft-4 keywords (a boolean exclusiveMinimum)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"{'.'.join(str(p) for p in e.path) or '.'}: {e.message}" for e in errors[:5])
        raise Invalid(f"{name_of(obj)}: {detail}")


def validate(obj: Obj, crds: Iterable[Obj] = ()) -> str:
    """Validate one object; returns how ("builtin", "monitoring" or "crd")."""
    group = obj["apiVersion"].rpartition("/")[0]
    if group == "monitoring.coreos.com":
        validate_monitoring(obj)
        return "monitoring"
    if "." in group and not group.endswith(".k8s.io"):
        validate_custom(obj, crds)
        return "crd"
    validate_builtin(obj)
    return "builtin"
