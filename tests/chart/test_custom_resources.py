"""Every RolloutPolicy the repository ships (policies/, examples/) is valid against the CRDs the chart
installs, as a strict API server would check it, and every Knative object in examples/ against Knative's
own CRDs (../shared/knative/crds)."""

from __future__ import annotations

import pytest

from tests.chart.gitops import knative_crds
from tests.chart.rendering import ROOT, Obj, crds, documents
from tests.chart.validation import validate

FILES = sorted([*(ROOT / "policies").glob("*.yaml"), *(ROOT / "examples").rglob("*.yaml")])


def _objects(kind_group: str) -> list[tuple[str, Obj]]:
    out = []
    for path in FILES:
        for doc in documents(path.read_text()):
            if str(doc.get("apiVersion", "")).startswith(kind_group + "/"):
                out.append((str(path.relative_to(ROOT)), doc))
    return out


POLICIES = _objects("knrollout.dev")
KNATIVE = _objects("serving.knative.dev")


def test_the_repository_ships_policies_and_services() -> None:
    assert len(POLICIES) >= 5 and len(KNATIVE) >= 3


@pytest.mark.parametrize(
    ("where", "obj"), POLICIES, ids=[f"{w}:{o['metadata']['name']}" for w, o in POLICIES]
)
def test_our_custom_resources_pass_our_crds(where: str, obj: Obj) -> None:
    assert obj["kind"] in {"RolloutPolicy", "ClusterMetricSource"}  # what teams and admins write
    validate(obj, crds())


@pytest.mark.parametrize(("where", "obj"), KNATIVE, ids=[f"{w}:{o['metadata']['name']}" for w, o in KNATIVE])
def test_knative_objects_pass_knatives_crds(where: str, obj: Obj) -> None:
    validate(obj, knative_crds())


def test_the_crd_check_rejects_what_the_api_server_would() -> None:
    _, policy = next(p for p in POLICIES if p[1]["kind"] == "RolloutPolicy")
    bad = {**policy, "spec": {**policy["spec"], "strategyy": {}}}
    with pytest.raises(AssertionError, match="strategyy"):
        validate(bad, crds())
