"""The product's packages depend on each other in one direction only: a module imports from its own package
or from a lower layer, never upwards (a pure core below, I/O adapters above, the CLI on top)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rollout"
LAYERS = {
    "logging": 0,
    "tracing": 0,  # OpenTelemetry spans, off until configured
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
    assert packages | {"logging", "tracing"} == set(LAYERS)


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


def _spec_writes(path: Path) -> list[str]:
    """Calls of KubeClient's spec-writing methods in `path` whose target may be a Knative object: any
    `merge_patch`/`replace` that is neither of a status subresource nor of one of our own kinds or Events."""
    ours = {"ROLLOUTS", "POLICIES", "LEASES", "EVENTS", "CLUSTER_SOURCES"}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        if (
            node.func.attr not in {"merge_patch", "replace"}
            or not receiver.endswith("client")
            or not node.args
        ):
            continue
        status = any(k.arg == "subresource" and isinstance(k.value, ast.Constant) for k in node.keywords)
        first = node.args[0]
        if not status and not (isinstance(first, ast.Name) and first.id in ours):
            found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return found


def test_only_the_traffic_seam_writes_traffic() -> None:
    """rollout/kube/traffic.py is the one place that patches a Knative Service or Route and the one that
    prepares the block it sends (users' entries merged, a Route's configuration named)."""
    writes = [w for path in sorted(ROOT.rglob("*.py")) for w in _spec_writes(path)]
    # the traffic seam, and the pre-warm hold on a Revision (two annotations, checked before they are sent)
    assert [w.rsplit(":", 1)[0] for w in writes] == [
        "rollout/kube/revisions.py",
        "rollout/kube/traffic.py",
    ], writes
    preparing = {
        str(path.relative_to(ROOT.parent))
        for path in ROOT.rglob("*.py")
        for name in ("with_configuration", "merge_user_entries")
        if f"{name}(" in path.read_text()
    }
    # where the two are defined, and the seam that calls them
    assert preparing == {"rollout/knative/traffic.py", "rollout/engine/plans.py", "rollout/kube/traffic.py"}


def test_no_product_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT.parent)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert long == {}


def _module_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("rollout.")}


def test_no_two_product_modules_import_each_other() -> None:
    """No import cycle between modules, not even one hidden behind TYPE_CHECKING."""
    modules = {
        ".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in ROOT.rglob("*.py")
    }
    graph = {
        name: {m for m in _module_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
