"""hack/ cannot run here (no Docker engine, no kind): keep it correct by what can be checked — shell syntax
(and shellcheck where installed), valid manifests, chart values it sets pass the schema, and its defaults
agree with what the e2e suite expects."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tests.chart.rendering import ROOT, chart, documents
from tests.chart.validation import validate
from tests.e2e.cluster import VERSION, settings_from

HACK = ROOT / "hack"
SCRIPTS = sorted(HACK.glob("*.sh"))


def _defaults() -> dict[str, str]:
    """NAME="${NAME:-default}" settings of hack/lib.sh, with $VERSION filled in."""
    text = (HACK / "lib.sh").read_text()
    found = dict(re.findall(r'^(\w+)="\$\{\w+:-([^}]*)\}"', text, re.MULTILINE))
    return {k: v.replace("$VERSION", VERSION) for k, v in found.items()}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_scripts_parse(script: Path) -> None:
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    if script.name != "lib.sh":
        assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env bash\n")


def test_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    result = subprocess.run(
        ["shellcheck", "-x", "-s", "bash", *(s.name for s in SCRIPTS)],
        cwd=HACK,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_manifests_are_valid() -> None:
    for path in sorted((HACK / "manifests").glob("*.yaml")):
        for obj in documents(path.read_text()):
            validate(obj)


def test_install_sets_values_the_chart_accepts() -> None:
    text = re.sub(r"\\\n\s*", " ", (HACK / "install-controller.sh").read_text())
    image = _defaults()["IMAGE"]
    sets = re.findall(r"--set ([^\s]+)", text)
    assert sets
    values: dict[str, object] = {}
    repository, tag = image.rsplit(":", 1)
    for raw in sets:
        expression = raw.replace('"${IMAGE%:*}"', repository).replace('"${IMAGE##*:}"', tag)
        values = _merge(values, helm.parse_set_string(expression))
    chart().validate_schema(values)
    assert values["queueProxyMonitor"] == {"enabled": True}


def _merge(a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)  # type: ignore[arg-type]
        else:
            out[key] = value
    return out


def test_kind_ports_match_the_manifests_and_the_e2e_defaults(tmp_path: Path) -> None:
    defaults = _defaults()
    kind_up = (HACK / "kind-up.sh").read_text()
    assert "containerPort: 31080, hostPort: $INGRESS_PORT, listenAddress: 127.0.0.1" in kind_up
    assert "containerPort: 30090, hostPort: $PROMETHEUS_PORT, listenAddress: 127.0.0.1" in kind_up
    assert "prometheus.service.nodePort=30090" in kind_up
    nodeport = yaml.safe_load((HACK / "manifests" / "kourier-nodeport.yaml").read_text())
    assert nodeport["spec"]["ports"][0]["nodePort"] == 31080
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("{}")
    e2e = settings_from({"KUBECONFIG": str(kubeconfig)}, tmp_path)
    assert not isinstance(e2e, str)
    assert e2e.ingress == f"http://127.0.0.1:{defaults['INGRESS_PORT']}"
    assert e2e.domain == defaults["DOMAIN"]
    assert e2e.image == defaults["IMAGE"]
    (domain_patch,) = [line for line in kind_up.splitlines() if "config-domain" in line]
    assert "$DOMAIN" in domain_patch
