"""The krew manifest template names the plugin kubectl finds and covers the platforms users run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_krew_template_installs_the_executable_the_package_provides() -> None:
    manifest = yaml.safe_load((ROOT / "hack" / "krew" / "knrollout.yaml").read_text())
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "knrollout"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "kubectl-knrollout" in scripts
    platforms = manifest["spec"]["platforms"]
    assert {p["bin"] for p in platforms} == {"kubectl-knrollout"}
    assert {
        (p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"]) for p in platforms
    } >= {
        ("linux", "amd64"),
        ("linux", "arm64"),
    }
