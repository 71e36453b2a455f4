"""The real `kubectl` against the sandbox: get (Table columns), describe, apply -f (create, then update),
patch --type=merge, delete, create (protobuf bodies), and custom kinds once their CRDs are applied —
a test CRD and the project's own CRDs from charts/knative-rollout/crds/."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rollout_lab.sandbox.apiserver import SandboxApiServer
from rollout_lab.sandbox.apiserver.kinds import KSERVICES

KUBECTL = shutil.which("kubectl")
REPO = Path(__file__).resolve().parents[3]
PROJECT_CRDS = REPO / "charts" / "knative-rollout" / "crds"
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

KSVC_YAML = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: example.com/hello:{version}
          env:
            - name: TARGET
              value: "{target}"
"""

CRD_YAML = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.test.example.com
spec:
  group: test.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      subresources: {status: {}}
      additionalPrinterColumns:
        - {name: Speed, type: integer, jsonPath: .spec.speed}
        - {name: Phase, type: string, jsonPath: .status.phase}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                speed: {type: integer, maximum: 100}
            status:
              type: object
              properties:
                phase: {type: string}
"""


@dataclass
class Kubectl:
    kubeconfig: Path
    cache: Path

    async def run(self, *args: str, stdin: str | None = None, check: bool = True) -> tuple[int, str, str]:
        assert KUBECTL is not None
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache}",
            "--request-timeout=20s",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 60)
        code = proc.returncode if proc.returncode is not None else -1
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({code}): {err.decode()}")
        return code, out.decode(), err.decode()


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[tuple[Kubectl, SandboxApiServer]]:
    async with SandboxApiServer() as srv:
        yield Kubectl(srv.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "cache"), srv


def header(table: str) -> list[str]:
    return table.splitlines()[0].split()


async def test_apply_get_describe_patch_delete(kubectl: tuple[Kubectl, SandboxApiServer]) -> None:
    k, srv = kubectl
    _, out, _ = await k.run("apply", "-f", "-", stdin=KSVC_YAML.format(version=1, target="World"))
    assert out.strip() == "service.serving.knative.dev/hello created"
    _, out, _ = await k.run("apply", "-f", "-", stdin=KSVC_YAML.format(version=2, target="Sandbox"))
    assert out.strip() == "service.serving.knative.dev/hello configured"
    stored = srv.store.get(KSERVICES, "default", "hello")
    assert stored is not None and stored["metadata"]["generation"] == 2
    assert stored["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "TARGET", "value": "Sandbox"}
    ]
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]

    _, out, _ = await k.run("get", "ksvc")
    assert header(out) == ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]
    assert out.splitlines()[1].split()[0] == "hello"
    _, out, _ = await k.run("get", "services.serving.knative.dev", "hello", "-o", "json")
    assert json.loads(out)["metadata"]["generation"] == 2

    _, out, _ = await k.run("describe", "ksvc", "hello")
    assert "Name:         hello" in out and "Kind:         Service" in out and "Sandbox" in out

    _, out, _ = await k.run(
        "patch", "ksvc", "hello", "--type=merge", "-p", '{"metadata":{"labels":{"team":"a"}}}'
    )
    assert "patched" in out
    _, out, _ = await k.run("get", "ksvc", "-l", "team=a", "-o", "name")
    assert out.strip() == "service.serving.knative.dev/hello"
    # kubectl names itself as field manager, per command
    _, out, _ = await k.run("get", "ksvc", "hello", "-o", "json", "--show-managed-fields")
    managers = {e["manager"]: e for e in json.loads(out)["metadata"]["managedFields"]}
    assert set(managers) == {"kubectl-client-side-apply", "kubectl-patch"}
    assert managers["kubectl-patch"]["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}
    assert "f:template" in managers["kubectl-client-side-apply"]["fieldsV1"]["f:spec"]

    _, out, _ = await k.run("delete", "ksvc", "hello")
    assert out.strip() == 'service.serving.knative.dev "hello" deleted'
    code, _, err = await k.run("get", "ksvc", "hello", check=False)
    assert code == 1 and "NotFound" in err


async def test_apply_rejects_invalid_objects_with_field_paths(
    kubectl: tuple[Kubectl, SandboxApiServer],
) -> None:
    k, _ = kubectl
    bad = KSVC_YAML.format(version=1, target="x").replace(
        "        - image:", "        - bogus: 1\n          image:"
    )
    code, _, err = await k.run("apply", "-f", "-", stdin=bad, check=False)
    assert code == 1
    assert 'unknown field "spec.template.spec.containers[0].bogus"' in err


async def test_built_in_kinds(kubectl: tuple[Kubectl, SandboxApiServer]) -> None:
    k, _ = kubectl
    await k.run("create", "namespace", "team-a")
    await k.run("create", "configmap", "settings", "-n", "team-a", "--from-literal=a=1", "--from-literal=b=2")
    await k.run("create", "secret", "generic", "creds", "-n", "team-a", "--from-literal=token=abc")
    _, out, _ = await k.run("get", "configmaps", "-n", "team-a")
    assert header(out) == ["NAME", "DATA", "AGE"] and out.splitlines()[1].split()[:2] == ["settings", "2"]
    _, out, _ = await k.run("get", "secret", "creds", "-n", "team-a", "-o", "jsonpath={.data.token}")
    assert out == "YWJj"
    _, out, _ = await k.run("get", "namespaces")
    assert header(out) == ["NAME", "STATUS", "AGE"] and "team-a" in out
    await k.run("delete", "namespace", "team-a")
    code, _, _ = await k.run("get", "namespace", "team-a", check=False)
    assert code == 1


async def test_custom_kind_once_its_crd_is_applied(kubectl: tuple[Kubectl, SandboxApiServer]) -> None:
    k, _ = kubectl
    code, _, err = await k.run("get", "gadgets", check=False)
    assert code == 1 and "doesn't have a resource type" in err
    _, out, _ = await k.run("apply", "-f", "-", stdin=CRD_YAML)
    assert "created" in out
    gadget = "apiVersion: test.example.com/v1alpha1\nkind: Gadget\nmetadata: {name: g1}\nspec: {speed: 7}\n"
    _, out, _ = await k.run("apply", "-f", "-", stdin=gadget)
    assert out.strip() == "gadget.test.example.com/g1 created"
    _, out, _ = await k.run("get", "gd")
    assert header(out) == ["NAME", "SPEED", "PHASE"]
    assert out.splitlines()[1].split() == ["g1", "7"], "a missing value is a blank cell"
    code, _, err = await k.run("apply", "-f", "-", stdin=gadget.replace("7", "700"), check=False)
    assert code == 1 and "spec.speed" in err and "less than or equal to 100" in err
    await k.run("delete", "crd", "gadgets.test.example.com")
    code, _, _ = await k.run("get", "gadgets", check=False)
    assert code == 1


@pytest.mark.skipif(not PROJECT_CRDS.is_dir(), reason="charts/knative-rollout/crds/ is not there yet")
async def test_project_crds_apply_and_serve(kubectl: tuple[Kubectl, SandboxApiServer]) -> None:
    k, _srv = kubectl
    _, out, _ = await k.run("apply", "-f", str(PROJECT_CRDS))
    files = sorted(PROJECT_CRDS.glob("*.yaml"))
    assert out.count("created") == len(files)
    for path in files:
        plural = path.name.split(".", 1)[0]
        code, out, err = await k.run("get", plural, "-A", check=False)
        assert code == 0, err
        assert "No resources found" in err
    _, out, _ = await k.run("api-resources", "--api-group=knrollout.dev", "-o", "name")
    assert sorted(out.split()) == sorted(f"{p.name.split('.', 1)[0]}.knrollout.dev" for p in files)


@pytest.mark.skipif(not PROJECT_CRDS.is_dir(), reason="charts/knative-rollout/crds/ is not there yet")
async def test_project_crd_cel_rule_is_enforced(kubectl: tuple[Kubectl, SandboxApiServer]) -> None:
    k, _ = kubectl
    await k.run("apply", "-f", str(PROJECT_CRDS / "rolloutpolicies.knrollout.dev.yaml"))
    both = "apiVersion: knrollout.dev/v1alpha1\nkind: RolloutPolicy\nmetadata: {name: p}\nspec:\n  strategy: {canary: {}, abTest: {}}\n"
    code, _, err = await k.run("apply", "-f", "-", stdin=both, check=False)
    assert code == 1 and "set exactly one strategy" in err, err
