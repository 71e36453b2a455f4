"""checkov (PyPI, installed by scripts/ensure-checkov in its own virtualenv) scans the rendered chart: with
the default values and with the hardened example (image by digest, NetworkPolicy, scoped Secret access).
Every finding it still reports is listed here with the reason it is accepted; a new finding fails, and so
does an accepted one that no longer occurs (the list stays exact)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.rendering import RELEASE, ROOT, VALUE_SETS, render

CHECKOV = Path(os.environ.get("ROLLOUT_CHECKOV_VENV", ROOT / ".venv-checkov")) / "bin" / "checkov"

TOKEN = "the controller calls the API server with its ServiceAccount token: it needs it mounted"
TEST_POD_PROBES = "the `helm test` pod makes one request and exits: probes do not apply"
LOCAL_IMAGE = "the default image is the one users build themselves (docker build); values set image.digest"

CONTROLLER = f"{RELEASE}-knative-rollout"  # the Deployment, and its pods (checkov's graph checks)
TEST_POD = f"{RELEASE}-knative-rollout-test-readyz"
NO_POLICY = (
    "networkPolicy.enabled is off by default (it needs the API server's address, which only the installer "
    "knows); the hardened values turn it on"
)

# (values set, kind, name, check) -> why it is accepted
ACCEPTED: dict[tuple[str, str, str, str], str] = {
    ("default", "Deployment", CONTROLLER, "CKV_K8S_38"): TOKEN,
    ("default", "Deployment", CONTROLLER, "CKV_K8S_43"): LOCAL_IMAGE,
    ("default", "Deployment", CONTROLLER, "CKV_K8S_15"): LOCAL_IMAGE,
    ("default", "Pod", CONTROLLER, "CKV2_K8S_6"): NO_POLICY,
    ("default", "Pod", TEST_POD, "CKV_K8S_43"): LOCAL_IMAGE,
    ("default", "Pod", TEST_POD, "CKV_K8S_15"): LOCAL_IMAGE,
    ("default", "Pod", TEST_POD, "CKV_K8S_8"): TEST_POD_PROBES,
    ("default", "Pod", TEST_POD, "CKV_K8S_9"): TEST_POD_PROBES,
    ("default", "Pod", TEST_POD, "CKV2_K8S_6"): NO_POLICY,
    ("hardened", "Deployment", CONTROLLER, "CKV_K8S_38"): TOKEN,
    ("hardened", "Pod", TEST_POD, "CKV_K8S_8"): TEST_POD_PROBES,
    ("hardened", "Pod", TEST_POD, "CKV_K8S_9"): TEST_POD_PROBES,
}


def _scan(tmp: Path) -> set[tuple[str, str, str, str]]:
    """(values set, kind, name, check id) of every failed check; each values set scanned alone (checkov's graph
    checks would otherwise match one set's NetworkPolicy to the other's pods)."""
    found: set[tuple[str, str, str, str]] = set()
    for name, values in (("default", {}), ("hardened", VALUE_SETS["hardened"])):
        (tmp / name).mkdir()
        (tmp / name / "chart.yaml").write_text(yaml.safe_dump_all(render(values)))
        done = subprocess.run(
            [str(CHECKOV), "-d", str(tmp / name), "--framework", "kubernetes", "-o", "json", "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        reports = json.loads(done.stdout)
        for report in reports if isinstance(reports, list) else [reports]:
            assert report["summary"]["parsing_errors"] == 0, report["summary"]
            for check in report["results"]["failed_checks"]:
                kind, _, resource = check["resource"].split(".", 3)[:3]  # kind.namespace.name[.labels]
                found.add((name, kind, resource, check["check_id"]))
    return found


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed (./scripts/ensure-checkov)")
def test_checkov_finds_nothing_but_the_accepted_findings(tmp_path: Path) -> None:
    found = _scan(tmp_path)
    assert sorted(found - ACCEPTED.keys()) == [], (
        "new checkov findings: fix them or accept them with a reason"
    )
    assert sorted(ACCEPTED.keys() - found) == [], "accepted findings that no longer occur: drop them"
