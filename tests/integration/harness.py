"""The sandbox (API server, Knative simulator, traffic generator, optionally a real Prometheus) with our CRDs
installed, and helpers that act like a user (kubectl apply) and watch like an auditor (every traffic split
the sandbox ever served). The controller under test talks to it through kubernetes-asyncio, unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.api.load import parse_rollout
from rollout.api.rollout import Rollout
from rollout.controller.app import Controller, ControllerConfig
from rollout.controller.egress import Destinations
from rollout.controller.evaluation import evaluate_rollout
from rollout.controller.rollouts import ControllerDefaults
from rollout.controller.webhooks import WebhookSettings
from rollout.kube.client import KubeClient
from rollout.kube.informer import InformerSettings
from rollout.kube.traffic import knative_rules
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.environment import SandboxEnvironment, SandboxOptions, sandbox_environment
from rollout_lab.sandbox.store_api import ResourceType

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "charts" / "knative-rollout" / "crds"
POLICIES = ResourceType("knrollout.dev", "v1alpha1", "rolloutpolicies", "RolloutPolicy")
ROLLOUTS = ResourceType("knrollout.dev", "v1alpha1", "rollouts", "Rollout")
NS = "default"

NEEDS_PROMETHEUS = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="needs Debian's prometheus (scripts/test installs it)"
    ),
]
"""pytestmark of the tests that judge on real metrics."""


@dataclass
class Served:
    """One status.traffic the sandbox committed for a Service (only while its routes were Ready)."""

    service: str
    at: float
    percents: dict[str, int]
    tags: dict[str, str]


@dataclass
class Cluster:
    env: SandboxEnvironment
    kubeconfig: Path
    served: list[Served] = field(default_factory=list)

    @property
    def store(self) -> Any:
        return self.env.store

    # --- acting like a user ----------------------------------------------------------------------------

    def apply_policy(self, name: str, spec: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
        existing = self.store.get(POLICIES, namespace, name)
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        body = {
            "apiVersion": "knrollout.dev/v1alpha1",
            "kind": "RolloutPolicy",
            "metadata": metadata,
            "spec": spec,
        }
        if existing is None:
            return dict(self.store.create(POLICIES, body))
        metadata["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return dict(self.store.update(POLICIES, body))

    def create_service(
        self,
        name: str,
        *,
        image: str = "ghcr.io/acme/hello:v1",
        policy: str | None = "canary",
        behaviour: dict[str, str] | None = None,
        rps: float | None = None,
        traffic: list[dict[str, Any]] | None = None,
        load: dict[str, str] | None = None,
        namespace: str = NS,
    ) -> dict[str, Any]:
        """`load`: the Service's own sandbox annotations (e.g. `tag-traffic`), without the prefix."""
        labels = {"knrollout.dev/policy": policy} if policy else {}
        annotations = {f"sandbox.knrollout.dev/{k}": v for k, v in (load or {}).items()}
        if rps is not None:
            annotations["sandbox.knrollout.dev/rps"] = str(rps)
        spec: dict[str, Any] = {"template": template(image, behaviour)}
        if traffic is not None:
            spec["traffic"] = traffic
        body = {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
            "spec": spec,
        }
        return dict(self.store.create(kinds.KSERVICES, body))

    def update_service(
        self, name: str, change: Callable[[dict[str, Any]], None], namespace: str = NS
    ) -> dict[str, Any]:
        for _ in range(10):
            svc = copy.deepcopy(self.service(name, namespace))
            svc.pop("status", None)
            change(svc)
            try:
                return dict(self.store.update(kinds.KSERVICES, svc))
            except Exception as exc:  # a conflict with the controller's own write: read again
                if getattr(exc, "code", None) != 409:
                    raise
        raise AssertionError("could not update the Service")

    def new_revision(
        self, name: str, image: str, behaviour: dict[str, str] | None = None, namespace: str = NS
    ) -> dict[str, Any]:
        def change(svc: dict[str, Any]) -> None:
            svc["spec"]["template"] = template(image, behaviour)

        return self.update_service(name, change, namespace)

    def request(self, rollout: str, action: str, *, request_id: str, by: str = "alice") -> None:
        """What `rollout promote|abort|pause|resume|retry` writes: spec.request on the Rollout."""
        for _ in range(10):
            obj = copy.deepcopy(self.store.get(ROLLOUTS, NS, rollout))
            obj.pop("status", None)
            obj["spec"]["request"] = {
                "action": action,
                "id": request_id,
                "requestedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "requestedBy": by,
            }
            try:
                self.store.update(ROLLOUTS, obj)
                return
            except Exception as exc:
                if getattr(exc, "code", None) != 409:
                    raise
        raise AssertionError("could not write the request")

    # --- reading ---------------------------------------------------------------------------------------

    def service(self, name: str, namespace: str = NS) -> dict[str, Any]:
        obj = self.store.get(kinds.KSERVICES, namespace, name)
        assert obj is not None, f"Service {name} not found"
        return dict(obj)

    def spec_traffic(self, name: str) -> list[dict[str, Any]]:
        return list(self.service(name)["spec"].get("traffic") or [])

    def latest_created(self, name: str) -> str | None:
        return (self.service(name).get("status") or {}).get("latestCreatedRevisionName")

    def rollouts(self, target: str) -> list[Rollout]:
        items, _ = self.store.list(ROLLOUTS, NS, label_selector=f"knrollout.dev/target={target}")
        out = []
        for item in items:
            parsed, problems = parse_rollout(item)
            assert parsed is not None, problems
            out.append(parsed)
        return sorted(out, key=lambda r: r.metadata.name)

    def rollout(self, name: str, namespace: str = NS) -> Rollout | None:
        obj = self.store.get(ROLLOUTS, namespace, name)
        if obj is None:
            return None
        parsed, problems = parse_rollout(obj)
        assert parsed is not None, problems
        return parsed

    def policy(self, name: str) -> dict[str, Any]:
        return dict(self.store.get(POLICIES, NS, name))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        items, _ = self.store.list(kinds.EVENTS, NS)
        return [e for e in items if name is None or e["involvedObject"]["name"] == name]

    def reasons(self, name: str) -> list[str]:
        return [
            e["reason"] for e in sorted(self.events(name), key=lambda e: e["metadata"]["resourceVersion"])
        ]


def template(image: str, behaviour: dict[str, str] | None = None) -> dict[str, Any]:
    annotations = {f"sandbox.knrollout.dev/{k}": v for k, v in (behaviour or {}).items()}
    return {"metadata": {"annotations": annotations}, "spec": {"containers": [{"image": image}]}}


def install_crds(store: Any) -> None:
    for path in sorted(CRD_DIR.glob("*.yaml")):
        store.create(kinds.CRDS, yaml.safe_load(path.read_text()))


def served_split(obj: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, str]] | None:
    """What a Service or Route serves (revision -> percent, without 0% entries; tag -> revision), or None
    while its routes are not Ready."""
    status = obj.get("status") or {}
    ready = any(
        c.get("type") == "RoutesReady" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    if not ready:
        return None
    percents: dict[str, int] = {}
    tags: dict[str, str] = {}
    for e in status.get("traffic") or ():
        if e.get("revisionName"):
            percents[e["revisionName"]] = percents.get(e["revisionName"], 0) + int(e.get("percent") or 0)
            if e.get("tag"):
                tags[e["tag"]] = e["revisionName"]
    return {k: v for k, v in percents.items() if v}, tags


def _record_served(cluster: Cluster) -> None:
    loop = asyncio.get_running_loop()

    def listener(rt: Any, entry: Any) -> None:
        split = served_split(entry.obj)
        if split is None or entry.type == "DELETED":
            return
        served = Served(entry.name, loop.time(), *split)
        last = cluster.served[-1] if cluster.served else None
        if last is None or (last.service, last.percents, last.tags) != (
            served.service,
            served.percents,
            served.tags,
        ):
            cluster.served.append(served)

    cluster.store.on_commit(kinds.KSERVICES, listener)


@contextlib.asynccontextmanager
async def sandbox(**options: Any) -> AsyncIterator[Cluster]:
    defaults: dict[str, Any] = {"ready_delay": 0.3, "cold_start": 0.2, "rps": 20.0, "seed": 7}
    opts = SandboxOptions(**{**defaults, **options})
    with tempfile.TemporaryDirectory(prefix="rollout-it-") as tmp:
        async with sandbox_environment(opts) as env:
            install_crds(env.store)
            kubeconfig = env.api.write_kubeconfig(Path(tmp) / "kubeconfig")
            cluster = Cluster(env, kubeconfig)
            _record_served(cluster)
            yield cluster


FAST_INFORMERS = InformerSettings(
    watch_timeout=30, read_timeout=10.0, resync=30.0, backoff_base=0.05, backoff_cap=1.0
)


@contextlib.asynccontextmanager
async def controller(cluster: Cluster, **config: Any) -> AsyncIterator[Controller]:
    """An in-process controller against the sandbox, stopped gracefully on exit."""
    from rollout.controller.app import running

    evaluator = config.pop("evaluator", evaluate_rollout)
    measure = config.pop("measure", None)
    validator = config.pop("validator", knative_rules)
    client = await KubeClient.connect(str(cluster.kubeconfig))
    prom = cluster.env.prometheus.url if cluster.env.prometheus is not None else "http://127.0.0.1:9"
    cfg = ControllerConfig(
        **{
            "workers": 4,
            "informer": FAST_INFORMERS,
            "defaults": ControllerDefaults(prometheus_url=prom),
            "analysis_settle": 0.3,
            # the tests' hooks listen on 127.0.0.1, which only an explicit network entry allows
            "webhooks": WebhookSettings(Destinations.parse(["127.0.0.0/8"])),
            **config,
        }
    )
    ctl = Controller(client, cfg, evaluator=evaluator, measure=measure, validator=validator)
    try:
        async with running(ctl):
            await asyncio.wait_for(ctl.started.wait(), timeout=10)
            yield ctl
    finally:
        await client.close()


async def eventually(check: Callable[[], Any], within: float = 10.0, interval: float = 0.05) -> Any:
    """Wait until `check()` returns something truthy (and return it); fail with the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"not true after {within}s (last: {last!r})")
        await asyncio.sleep(interval)


async def settles(ctl: Controller, quiet: float = 0.4, within: float = 5.0) -> None:
    """Wait until the controller has reconciled nothing for `quiet` seconds (fail if it keeps reconciling,
    e.g. a write loop or a retried error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        before = ctl.reconciled
        await asyncio.sleep(quiet)
        if ctl.reconciled == before and not ctl._busy:
            return
        if loop.time() > deadline:
            raise AssertionError(f"the controller is still reconciling after {within}s ({ctl.reconciled})")


def allowed_splits(stable: str, candidate: str, weights: list[int]) -> list[dict[str, int]]:
    """Every split a canary rollout of `weights` may serve: stable alone, each step, candidate alone."""
    return [
        {stable: 100},
        *({stable: 100 - w, candidate: w} for w in weights if 0 < w < 100),
        {candidate: 100},
    ]


def assert_within_plan(cluster: Cluster, service: str, allowed: list[dict[str, int]]) -> list[dict[str, int]]:
    """Every split the sandbox served for `service` (while Ready) is one of `allowed`; returns them in order."""
    seen = [s.percents for s in cluster.served if s.service == service]
    bad = [s for s in seen if s not in allowed]
    assert not bad, f"served splits outside the plan: {bad} (allowed {allowed})"
    return seen


def phase_of(cluster: Cluster, name: str) -> str | None:
    r = cluster.rollout(name)
    return r.status.phase.value if r is not None else None


async def onboard(cluster: Cluster, name: str, policy: str = "canary", **service: Any) -> None:
    """Create a Service that opts in and wait until the controller has pinned its first revision."""
    cluster.create_service(name, policy=policy, **service)

    def pinned() -> bool:
        return any(e.get("tag") == "stable" and e.get("percent") == 100 for e in cluster.spec_traffic(name))

    await eventually(pinned, within=15)


def finished(cluster: Cluster, name: str) -> Rollout | None:
    r = cluster.rollout(name)
    return r if r is not None and r.status.phase.terminal else None


async def events_for(cluster: Cluster, name: str, reason: str, within: float = 5.0) -> list[dict[str, Any]]:
    """The Events of `reason` on object `name`, once there is one (Events follow the status write)."""
    found: list[dict[str, Any]] = await eventually(
        lambda: [e for e in cluster.events(name) if e["reason"] == reason], within=within
    )
    return found


async def reasons_when(cluster: Cluster, name: str, last: str, within: float = 5.0) -> list[str]:
    """The Event reasons on `name`, in order, once `last` is among them."""
    found: list[str] = await eventually(
        lambda: (r := cluster.reasons(name)) and last in r and r, within=within
    )
    return found


def controller_command(
    kubeconfig: Path, metrics_addr: str, *extra: str, profile: Path | None = None
) -> list[str]:
    """`rollout controller` against the sandbox, as a command line for a process of its own; with `profile`,
    under cProfile, which writes its statistics there when the controller exits."""
    profiled = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    return [
        sys.executable,
        *profiled,
        "-m",
        "rollout.cli.main",
        "controller",
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-addr",
        metrics_addr,
        *extra,
    ]


@contextlib.asynccontextmanager
async def controller_process(
    kubeconfig: Path, log: Path, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    args = controller_command(
        kubeconfig, "127.0.0.1:0", "--log-format", "json", "--resync", "20s", "--workers", "2", *extra
    )
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(*args, stdout=out, stderr=out, env={**os.environ})
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL
