"""The product's packages depend on each other in one direction only: a module imports from its own package
or from a lower layer, never upwards (a pure core below, I/O adapters above, the CLI on top)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rollout"
LAYERS = {
    "logging": 0,
    "api": 0,  # the models, their validation and the template language
    "engine": 1,  # pure decisions
    "knative": 1,  # Knative's rules, pure
    "analysis": 2,  # metric queries (PromQL, Prometheus)
    "lint": 2,
    "kube": 3,  # the Kubernetes API adapters
    "controller": 4,
    "cli": 5,
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m.split(".")[1] for m in found if m.startswith("rollout.")}


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages | {"logging"} == set(LAYERS)


def test_no_import_runs_upwards() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        here = parts[0] if len(parts) > 1 else path.stem
        if here not in LAYERS:
            continue
        for there in _imports(path) - {here}:
            if LAYERS.get(there, 99) >= LAYERS[here]:
                upward.append(f"{path.relative_to(ROOT.parent)} imports rollout.{there}")
    assert upward == []
