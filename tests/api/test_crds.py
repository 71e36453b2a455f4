"""The checked-in CRDs are exactly what the models generate, and they are valid structural schemas."""

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rollout.api.crd import ALL_CRDS, render_crds
from rollout.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "charts" / "knative-rollout" / "crds"


def test_checked_in_crds_match_the_models() -> None:
    for name, text in render_crds().items():
        path = CRD_DIR / name
        assert path.is_file(), f"missing {path}: run `rollout crds --output-dir {CRD_DIR}`"
        assert path.read_text() == text, f"{path} is stale: run `rollout crds --output-dir {CRD_DIR}`"


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    assert main(["crds", "--output-dir", str(tmp_path)]) == 0
    assert main(["crds", "--output-dir", str(tmp_path), "--check"]) == 0
    first = next(tmp_path.iterdir())
    first.write_text(first.read_text().replace("description", "descr", 1))
    assert main(["crds", "--output-dir", str(tmp_path), "--check"]) == 1


FORBIDDEN = {"$ref", "anyOf", "oneOf", "allOf", "const", "title", "$defs", "definitions"}


def _walk(node: Any, path: str = "") -> list[str]:
    bad: list[str] = []
    if isinstance(node, dict):
        for key in FORBIDDEN & node.keys():
            bad.append(f"{path}: {key}")
        if "properties" in node and "additionalProperties" in node:
            bad.append(f"{path}: properties with additionalProperties")
        if ("properties" in node or "items" in node) and "type" not in node:
            bad.append(f"{path}: no type")
        for key, value in node.get("properties", {}).items():
            if "type" not in value and not value.get("x-kubernetes-preserve-unknown-fields"):
                bad.append(f"{path}.{key}: no type")
            bad.extend(_walk(value, f"{path}.{key}"))
        if "items" in node:
            bad.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            bad.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return bad


@pytest.mark.parametrize("info", ALL_CRDS, ids=lambda i: i.kind)
def test_schema_is_structural(info: Any) -> None:
    crd = yaml.safe_load(render_crds()[f"{info.plural}.knrollout.dev.yaml"])
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"]
    assert version["additionalPrinterColumns"]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    # every field a user writes carries a description
    spec_props = schema["properties"]["spec"]["properties"]
    undocumented = [k for k, v in spec_props.items() if not v.get("description")]
    assert undocumented == []


def test_example_policy_validates_against_the_generated_schema() -> None:
    crd = yaml.safe_load(render_crds()["rolloutpolicies.knrollout.dev.yaml"])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    good = {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "strategy": {"canary": {"steps": [{"weight": 10, "bake": "2m"}, {"pause": {}}, {"weight": 50}]}},
            "analysis": {"metrics": [{"name": "e", "builtin": "errorRate", "threshold": {"max": 0.01}}]},
        },
    }
    jsonschema.Draft4Validator(schema).validate(good)
    bad = {**good, "spec": {"strategy": {"canary": {"steps": [{"weight": 150}]}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(bad)
    bad_duration = {**good, "spec": {"strategy": {"canary": {"steps": [{"weight": 5, "bake": "5 min"}]}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(bad_duration)
