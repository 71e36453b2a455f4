"""What the sandbox serves for serving.knative.dev agrees with Knative's real CRDs (v1.23, read from
../shared/knative/crds/, never committed): names, scope, subresources, printer columns, and schemas —
equal apart from descriptions, and giving the same verdicts and the same pruning on sample objects."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rollout_lab.sandbox.apiserver import MemoryStore
from rollout_lab.sandbox.apiserver.catalog import default_registry
from rollout_lab.sandbox.apiserver.kinds import CRDS, KSERVICES
from rollout_lab.sandbox.apiserver.resources import ResourceSpec
from rollout_lab.sandbox.apiserver.schema import apply_schema
from rollout_lab.sandbox.store_api import ApiError

CRD_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "knative" / "crds"
KINDS = {"service": "services", "configuration": "configurations", "revision": "revisions", "route": "routes"}


def real_crd(name: str) -> dict[str, Any]:
    path = CRD_DIR / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"Knative's CRDs are not at {CRD_DIR} (expected ../shared/knative/crds next to the repo)")
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def ours(plural: str) -> ResourceSpec:
    spec = default_registry().get(f"{plural}.serving.knative.dev")
    assert spec is not None
    return spec


def strip_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [strip_descriptions(v) for v in value]
    return value


@pytest.mark.parametrize(("name", "plural"), sorted(KINDS.items()))
def test_names_scope_subresources_and_columns(name: str, plural: str) -> None:
    crd = real_crd(name)
    spec = ours(plural)
    names = crd["spec"]["names"]
    (version,) = crd["spec"]["versions"]
    assert (spec.rt.kind, spec.rt.plural, spec.rt.singular) == (
        names["kind"],
        names["plural"],
        names["singular"],
    )
    assert list(spec.rt.short_names) == names.get("shortNames", [])
    assert list(spec.categories) == names.get("categories", [])
    assert spec.rt.namespaced == (crd["spec"]["scope"] == "Namespaced")
    assert spec.rt.version == version["name"] and version["served"] and version["storage"]
    assert spec.rt.has_status == ("status" in version.get("subresources", {}))
    columns = [(c.name, c.type, c.json_path) for c in spec.printer_columns]
    assert columns == [(c["name"], c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]


@pytest.mark.parametrize(("name", "plural"), sorted(KINDS.items()))
def test_schemas_equal_apart_from_descriptions(name: str, plural: str) -> None:
    crd = real_crd(name)
    real = strip_descriptions(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert ours(plural).schema == real


def container(**extra: Any) -> dict[str, Any]:
    return {"image": "example.com/app:1", **extra}


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "s"},
    }
    obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    return obj


SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("minimal", service({"template": {"spec": {"containers": [container()]}}})),
    (
        "full",
        service(
            {
                "template": {
                    "metadata": {"name": "s-v2", "annotations": {"autoscaling.knative.dev/min-scale": "1"}, "x": 1},
                    "spec": {
                        "containerConcurrency": 10,
                        "timeoutSeconds": 30,
                        "containers": [
                            container(
                                env=[{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"secretKeyRef": {"key": "k"}}}],
                                ports=[{"containerPort": 8080}],
                                resources={"limits": {"cpu": "500m", "memory": 128}},
                                readinessProbe={"httpGet": {"path": "/", "port": "http"}},
                            )
                        ],
                        "volumes": [{"name": "v", "configMap": {"name": "cm"}}],
                    },
                },
                "traffic": [
                    {"revisionName": "s-v1", "percent": 90, "tag": "stable"},
                    {"latestRevision": True, "percent": 10, "tag": "canary"},
                ],
            },
            {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}], "url": "http://s"},
        ),
    ),
    ("unknown fields", service({"template": {"spec": {"containers": [container(bogus=1)], "nope": {}}}, "x": 1})),
    ("missing containers", service({"template": {"spec": {}}})),
    ("string concurrency", service({"template": {"spec": {"containerConcurrency": "10", "containers": [container()]}}})),
    ("float percent", service({"template": {"spec": {"containers": [container()]}}, "traffic": [{"percent": 1.5}]})),
    ("bad quantity", service({"template": {"spec": {"containers": [container(resources={"limits": {"cpu": "lots"}})]}}})),
    ("port as list", service({"template": {"spec": {"containers": [container(ports=[{"containerPort": [1]}])]}}})),
    ("condition without status", service({"template": {"spec": {"containers": [container()]}}}, {"conditions": [{"type": "Ready"}]})),
    ("env duplicate names", service({"template": {"spec": {"containers": [container(env=[{"name": "A"}, {"name": "A"}])]}}})),
]  # fmt: skip


@pytest.mark.parametrize(("label", "sample"), SAMPLES, ids=[label for label, _ in SAMPLES])
def test_same_verdict_and_pruning_on_samples(label: str, sample: dict[str, Any]) -> None:
    real = real_crd("service")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    by_real, by_ours = copy.deepcopy(sample), copy.deepcopy(sample)
    real_result = apply_schema(real, by_real)
    our_result = apply_schema(ours("services").schema or {}, by_ours)
    assert by_real == by_ours, "the same fields are pruned and defaulted"
    assert sorted(real_result.pruned) == sorted(our_result.pruned)
    assert [c["field"] for c in real_result.causes] == [c["field"] for c in our_result.causes]
    # An independent validator (jsonschema) agrees with ours on the pruned object, except for the
    # Kubernetes-only rules it does not know (list-type maps and int32/int64 ranges).
    independent = list(jsonschema.Draft4Validator(real).iter_errors(by_real))
    if label != "env duplicate names":
        assert bool(independent) == bool(our_result.causes), (independent, our_result.causes)


def test_real_crds_applied_to_the_sandbox_serve_the_same_kind() -> None:
    store = MemoryStore()
    built_in = store.registry.get("services.serving.knative.dev")
    crd = real_crd("service")
    store.create(CRDS, crd)
    served = store.registry.get("services.serving.knative.dev")
    assert served is not None and served is not built_in
    assert served.schema == crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    sample = copy.deepcopy(SAMPLES[1][1])
    sample["metadata"]["namespace"] = "default"
    store.create(KSERVICES, sample)
    bad = copy.deepcopy(SAMPLES[3][1])
    bad["metadata"]["namespace"] = "default"
    with pytest.raises(ApiError) as err:
        store.create(KSERVICES, bad)
    assert err.value.details["causes"][0]["field"] == "spec.template.spec.containers"
    store.delete(CRDS, None, crd["metadata"]["name"])
    assert store.registry.get("services.serving.knative.dev") is built_in
    assert store.list(KSERVICES)[0] == [], "deleting the CRD deleted its objects"
