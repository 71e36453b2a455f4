"""Generate the CustomResourceDefinitions of knrollout.dev from the pydantic models.

The models are the single definition of the API; the CRD manifests under `charts/knative-rollout/crds/` are
this module's output (`rollout crds --output-dir charts/knative-rollout/crds`) and a test checks they match.
Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: references inlined, `anyOf [X, null]`
collapsed to X, no `additionalProperties` beside `properties`, no titles, defaults only for scalars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from rollout.api.common import GROUP, VERSION
from rollout.api.policy import RolloutPolicySpec, RolloutPolicyStatus
from rollout.api.rollout import RolloutSpec, RolloutStatus
from rollout.api.source import ClusterMetricSourceSpec, ClusterMetricSourceStatus

Schema = dict[str, Any]


@dataclass(frozen=True)
class CrdInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    printer_columns: tuple[dict[str, str], ...]
    scope: str = "Namespaced"


POLICY_CRD = CrdInfo(
    kind="RolloutPolicy",
    plural="rolloutpolicies",
    singular="rolloutpolicy",
    short_names=("krp",),
    spec_model=RolloutPolicySpec,
    status_model=RolloutPolicyStatus,
    description=(
        "How a Knative Service is rolled out. A Service or Route opts in with the label "
        "knrollout.dev/policy: <name> (policy in the same namespace)."
    ),
    printer_columns=(
        {"name": "Valid", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Valid")].status'},
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Valid")].reason',
            "priority": "1",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
)

ROLLOUT_CRD = CrdInfo(
    kind="Rollout",
    plural="rollouts",
    singular="rollout",
    short_names=("kro",),
    spec_model=RolloutSpec,
    status_model=RolloutStatus,
    description=(
        "One attempt to move a Knative Service from a stable revision to a candidate revision. Written by the "
        "controller; act on it with `rollout promote|abort|pause|resume|retry`."
    ),
    printer_columns=(
        {"name": "Target", "type": "string", "jsonPath": ".spec.target.name"},
        {"name": "Stable", "type": "string", "jsonPath": ".spec.stableRevision"},
        {"name": "Candidate", "type": "string", "jsonPath": ".spec.candidateRevision"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Step", "type": "string", "jsonPath": ".status.step"},
        {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": "1"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
)

CLUSTER_SOURCE_CRD = CrdInfo(
    kind="ClusterMetricSource",
    plural="clustermetricsources",
    singular="clustermetricsource",
    short_names=("kms",),
    spec_model=ClusterMetricSourceSpec,
    status_model=ClusterMetricSourceStatus,
    description=(
        "A Prometheus and the credentials to reach it, granted by the platform admins. RolloutPolicies use it "
        "with metricSource.ref: <name>; only the namespaces in spec.namespaces may (empty: every namespace). "
        "Cluster-scoped so that only those with cluster rights can write it."
    ),
    printer_columns=(
        {"name": "Address", "type": "string", "jsonPath": ".spec.prometheus.address"},
        {"name": "Dialect", "type": "string", "jsonPath": ".spec.dialect"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    scope="Cluster",
)

ALL_CRDS: tuple[CrdInfo, ...] = (POLICY_CRD, ROLLOUT_CRD, CLUSTER_SOURCE_CRD)

_DROP_KEYS = {"title", "additionalProperties", "discriminator", "examples"}


def _deref(schema: Schema, defs: dict[str, Schema]) -> Schema:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    target = defs[ref.rsplit("/", 1)[-1]]
    merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return _deref(merged, defs)


def to_structural(schema: Schema, defs: dict[str, Schema]) -> Schema:
    """Turn one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    schema = _deref(schema, defs)
    any_of = schema.get("anyOf")
    if any_of is not None:
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"cannot express a union of {len(non_null)} types in a structural schema")
        outer = {k: v for k, v in schema.items() if k != "anyOf"}
        return to_structural({**_deref(non_null[0], defs), **outer}, defs)

    out: Schema = {}
    for key, value in schema.items():
        if key in _DROP_KEYS or key == "$defs":
            continue
        if key == "default":
            if value is None or isinstance(value, (dict, list)):
                continue
            out[key] = value
        elif key == "properties":
            out[key] = {name: to_structural(sub, defs) for name, sub in value.items()}
        elif key == "const":
            out["enum"] = [value]
        elif key == "items":
            out[key] = to_structural(value, defs)
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        else:
            out[key] = value
    if "properties" in schema:
        out["type"] = "object"
    elif schema.get("type") == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = to_structural(extra, defs)
        elif "x-kubernetes-preserve-unknown-fields" not in out:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif schema.get("type") == "object" and "x-kubernetes-preserve-unknown-fields" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type[BaseModel]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    return to_structural(raw, raw.get("$defs", {}))


def _one_of_rules(kind: str) -> list[dict[str, str]]:
    if kind != "RolloutPolicy":
        return []
    return [
        {
            "rule": "[has(self.canary), has(self.blueGreen), has(self.abTest)].filter(x, x).size() == 1",
            "message": "set exactly one strategy: canary, blueGreen or abTest",
        }
    ]


def _drop_rules(schema: Schema) -> None:
    schema.pop("x-kubernetes-validations", None)
    for sub in schema.get("properties", {}).values():
        _drop_rules(sub)
    if isinstance(schema.get("items"), dict):
        _drop_rules(schema["items"])


def crd_manifest(info: CrdInfo) -> dict[str, Any]:
    spec_schema = model_schema(info.spec_model)
    status_schema = model_schema(info.status_model)
    if info.kind == "RolloutPolicy":
        strategy = spec_schema["properties"]["strategy"]
        strategy["x-kubernetes-validations"] = _one_of_rules(info.kind)
    if info.kind == "Rollout":
        # the policy copy was checked when the policy was written; a rule added since must not make the
        # API server refuse the status writes of a rollout that started before it
        _drop_rules(spec_schema["properties"]["policy"])
    root: Schema = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {**spec_schema, "description": spec_schema.get("description", f"Spec of a {info.kind}.")},
            "status": {
                **status_schema,
                "description": f"Observed state of a {info.kind}, written by the controller.",
            },
        },
        "required": ["spec"],
    }
    columns = [
        {
            **{k: v for k, v in col.items() if k != "priority"},
            **({"priority": int(col["priority"])} if "priority" in col else {}),
        }
        for col in info.printer_columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "knative-rollout"},
        },
        "spec": {
            "group": GROUP,
            "scope": info.scope,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": ["knrollout"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = (
    "# GENERATED by `rollout crds --output-dir charts/knative-rollout/crds` from the models in rollout/api/.\n"
    "# Do not edit: change the models and regenerate (a test fails when this file is stale).\n"
)


def render_crds() -> dict[str, str]:
    """File name -> YAML text for every CRD."""
    files: dict[str, str] = {}
    for info in ALL_CRDS:
        text = yaml.safe_dump(crd_manifest(info), sort_keys=False, width=110, allow_unicode=True)
        files[f"{info.plural}.{GROUP}.yaml"] = HEADER + text
    return files
