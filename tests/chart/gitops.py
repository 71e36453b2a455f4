"""The GitOps examples (examples/gitops/) as objects, and the real Knative CRDs from ../shared to check
Knative objects against."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.chart.rendering import ROOT, Obj, documents

GITOPS = ROOT / "examples" / "gitops"
KNATIVE_CRDS = ROOT.parent / "shared" / "knative" / "crds"


def load(relative: str) -> list[Obj]:
    return list(documents((GITOPS / relative).read_text()))


def all_files() -> list[Path]:
    return sorted(p for p in GITOPS.rglob("*.yaml"))


@cache
def knative_crds() -> list[Obj]:
    if not KNATIVE_CRDS.is_dir():
        pytest.skip(f"Knative's CRDs are not at {KNATIVE_CRDS} (../shared/knative/crds)")
    return [doc for path in sorted(KNATIVE_CRDS.glob("*.yaml")) for doc in documents(path.read_text())]


def one(docs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def yaml_text(value: str) -> Obj:
    loaded: Obj = yaml.safe_load(value)
    return loaded
