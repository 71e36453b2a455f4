"""The Flux recipe and the application it deploys: the team's manifests are valid against the real Knative
CRDs and ours and leave spec.traffic out; kustomize (kubectl's built-in) builds them and applies the
Kustomization's patch; the drift ignore rule points at the field the controller writes; the HelmRelease's
values pass the chart's schema."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rollout.api.common import POLICY_LABEL
from rollout.api.policy import RolloutPolicy
from tests.chart.gitops import GITOPS, all_files, knative_crds, load, one
from tests.chart.rendering import CHART_DIR, ROOT, Obj, chart, crds, documents
from tests.chart.validation import validate


def test_every_example_parses_and_names_its_kind() -> None:
    for path in all_files():
        for doc in documents(path.read_text()):
            assert doc.get("apiVersion") and doc.get("kind"), path


def test_app_manifests_are_valid_and_leave_traffic_to_the_controller() -> None:
    service = one(load("app/service.yaml"), "Service")
    policy = one(load("app/policy.yaml"), "RolloutPolicy")
    validate(service, knative_crds())
    validate(policy, crds())
    RolloutPolicy.model_validate(policy)  # the controller's own reading of it
    assert "traffic" not in service["spec"]
    assert service["metadata"]["labels"][POLICY_LABEL] == policy["metadata"]["name"]
    assert service["metadata"]["namespace"] == policy["metadata"]["namespace"]


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    return path


def kustomize(directory: Path) -> list[Obj]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return list(documents(result.stdout))


def test_kustomize_builds_the_app() -> None:
    built = kustomize(GITOPS / "app")
    assert sorted(o["kind"] for o in built) == ["RolloutPolicy", "Service"]


def _flux_kustomization() -> Obj:
    return one(load("flux/checkout.yaml"), "Kustomization")


def test_flux_patch_marks_services_for_ssa_merge(tmp_path: Path) -> None:
    """The Kustomization's patches, applied by real kustomize the way kustomize-controller does."""
    overlay = tmp_path / "overlay"
    shutil.copytree(GITOPS / "app", tmp_path / "app")
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": ["../app"], "patches": _flux_kustomization()["spec"]["patches"]})
    )
    built = kustomize(overlay)
    service = one(built, "Service")
    assert service["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/ssa": "Merge"}
    assert "annotations" not in one(built, "RolloutPolicy")["metadata"]
    validate(service, knative_crds())


def _pointer(obj: Obj, pointer: str) -> object:
    node: object = obj
    for part in pointer.lstrip("/").split("/"):
        assert isinstance(node, dict) and part in node, f"{pointer} does not resolve"
        node = node[part]
    return node


def test_drift_ignore_rule_covers_the_traffic_the_controller_writes() -> None:
    (rule,) = _flux_kustomization()["spec"]["driftIgnoreRules"]
    target = rule["target"]
    assert re.fullmatch(target["group"], "serving.knative.dev")
    assert re.fullmatch(target["kind"], "Service") and re.fullmatch(target["kind"], "Route")
    assert not re.fullmatch(target["kind"], "Revision")
    # the Service as the controller leaves it after onboarding: the pinned split
    pinned = one(load("app/service.yaml"), "Service")
    pinned["spec"]["traffic"] = [
        {"revisionName": "checkout-00007", "percent": 100, "tag": "stable"},
        {"latestRevision": True, "percent": 0, "tag": "latest"},
    ]
    validate(pinned, knative_crds())
    assert rule["paths"] == ["/spec/traffic"]
    assert _pointer(pinned, rule["paths"][0]) == pinned["spec"]["traffic"]


def test_flux_sources_and_release() -> None:
    sources = {d["metadata"]["name"]: d for d in load("flux/sources.yaml")}
    assert {d["apiVersion"] for d in sources.values()} == {"source.toolkit.fluxcd.io/v1"}
    release = one(load("flux/knative-rollout.yaml"), "HelmRelease")
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    spec = release["spec"]
    assert spec["chart"]["spec"]["sourceRef"]["name"] in sources
    assert (ROOT / spec["chart"]["spec"]["chart"]).resolve() == CHART_DIR
    assert spec["install"]["crds"] == spec["upgrade"]["crds"] == "CreateReplace"
    chart().validate_schema(spec["values"])
    kustomization = _flux_kustomization()
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert kustomization["spec"]["sourceRef"]["name"] in sources
