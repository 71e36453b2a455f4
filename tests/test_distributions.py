"""The two distributions of this repository: the product (`knative-rollout`, what the controller image
installs) and the local lab (`knative-rollout-lab` in lab/: the sandbox, the simulator, the demo). The
product must not need the lab, nor numpy and cel-python, and both carry one version: pyproject.toml's."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

import rollout

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LAB = tomllib.loads((ROOT / "lab" / "pyproject.toml").read_text())["project"]
LAB_ONLY = ("numpy", "celpy", "rollout_lab")


def test_one_version_for_the_package_the_lab_and_the_pins_between_them() -> None:
    assert rollout.__version__ == PRODUCT["version"] == LAB["version"]
    assert distribution("knative-rollout").version == PRODUCT["version"]
    pins = {Requirement(d).name: Requirement(d) for d in LAB["dependencies"]}
    assert str(pins["knative-rollout"].specifier) == f"=={PRODUCT['version']}"
    extra = Requirement(PRODUCT["optional-dependencies"]["sandbox"][0])
    assert (extra.name, str(extra.specifier)) == ("knative-rollout-lab", f"=={LAB['version']}")


def test_the_product_requires_nothing_only_the_lab_needs() -> None:
    requires = [Requirement(r) for r in distribution("knative-rollout").requires or []]
    runtime = {r.name.lower() for r in requires if r.marker is None}
    assert not runtime & {"numpy", "cel-python", "knative-rollout-lab"}


def test_the_product_package_holds_only_the_product() -> None:
    """`packages.find include = ["rollout*"]` from the repository root: only rollout/ is packaged."""
    found = sorted(p.name for p in ROOT.glob("rollout*") if (p / "__init__.py").exists())
    assert found == ["rollout"]
    assert not (ROOT / "rollout" / "sandbox").exists() and not (ROOT / "rollout" / "sim").exists()


def test_every_product_module_imports_without_the_lab() -> None:
    """Import every module of the product in a fresh interpreter: none pulls in the lab or its libraries."""
    probe = (
        "import importlib, pkgutil, sys\n"
        "import rollout\n"
        "names = [m.name for m in pkgutil.walk_packages(rollout.__path__, 'rollout.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"print(len(names), sorted(m for m in {LAB_ONLY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    count, loaded = done.stdout.strip().split(" ", 1)
    assert int(count) > 100 and loaded == "[]", done.stdout
