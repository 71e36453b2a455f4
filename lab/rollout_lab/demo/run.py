"""`rollout demo`: sandbox (API server, Knative simulator, traffic) + a local Prometheus when installed +
the controller, all in this process; a good revision is promoted, a bad one rolled back, live."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import yaml

from rollout.analysis.batching import run_tick
from rollout.api.crd import render_crds
from rollout.api.load import parse_rollout
from rollout.api.rollout import Rollout
from rollout.controller.app import Controller, ControllerConfig, running
from rollout.controller.rollouts import TARGET_LABEL, ControllerDefaults, latest
from rollout.kube.client import KubeClient
from rollout.kube.informer import InformerSettings
from rollout_lab.demo.display import Outcome, progress_line, signature, summary
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.environment import SandboxEnvironment, SandboxOptions, sandbox_environment
from rollout_lab.sandbox.store_api import ResourceType
from rollout_lab.sandbox.traffic.direct import DirectMetricSource, OutcomeWindows

POLICIES = ResourceType("knrollout.dev", "v1alpha1", "rolloutpolicies", "RolloutPolicy")
ROLLOUTS = ResourceType("knrollout.dev", "v1alpha1", "rollouts", "Rollout")
NAMESPACE = "default"
SERVICE = "hello"


@dataclass(frozen=True)
class DemoOptions:
    prometheus: bool = True  # use Debian's prometheus when installed
    rps: float = 60.0
    seed: int = 1
    stage_timeout: float = 120.0
    keep_kubeconfig: Path | None = None


def manifest(name: str) -> dict[str, Any]:
    text = resources.files("rollout_lab.demo").joinpath(name).read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _behaviour(image: str, error_rate: str, latency: str) -> Callable[[dict[str, Any]], None]:
    def change(svc: dict[str, Any]) -> None:
        template = svc["spec"]["template"]
        template["spec"]["containers"][0]["image"] = image
        annotations = template["metadata"]["annotations"]
        annotations["sandbox.knrollout.dev/error-rate"] = error_rate
        annotations["sandbox.knrollout.dev/latency-median"] = latency

    return change


class Demo:
    def __init__(self, env: SandboxEnvironment, out: TextIO, options: DemoOptions) -> None:
        self.env = env
        self.out = out
        self.options = options
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def store(self) -> Any:
        return self.env.store

    def rollouts(self) -> list[Rollout]:
        items, _ = self.store.list(ROLLOUTS, NAMESPACE, label_selector=f"{TARGET_LABEL}={SERVICE}")
        parsed = [parse_rollout(i)[0] for i in items]
        return [r for r in parsed if r is not None]

    def update_service(self, change: Callable[[dict[str, Any]], None]) -> None:
        for _ in range(20):
            svc = copy.deepcopy(self.store.get(kinds.KSERVICES, NAMESPACE, SERVICE))
            svc.pop("status", None)
            change(svc)
            try:
                self.store.update(kinds.KSERVICES, svc)
                return
            except Exception as exc:  # a conflict with the controller's own traffic write: read again
                if getattr(exc, "code", None) != 409:
                    raise
        raise RuntimeError("could not update the Service (conflicts)")

    async def wait_pinned(self) -> None:
        deadline = time.monotonic() + self.options.stage_timeout
        while time.monotonic() < deadline:
            svc = self.store.get(kinds.KSERVICES, NAMESPACE, SERVICE) or {}
            tags = {e.get("tag") for e in (svc.get("spec") or {}).get("traffic") or []}
            if "stable" in tags:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("the controller did not pin the Service's traffic")

    async def follow(self, candidate: str) -> Rollout:
        """Print the candidate's rollout as it moves, until it finishes."""
        deadline = time.monotonic() + self.options.stage_timeout
        last: tuple[object, ...] | None = None
        while time.monotonic() < deadline:
            mine = [r for r in self.rollouts() if r.spec.candidate_revision == candidate]
            current = latest(mine)
            if current is not None:
                sig = signature(current)
                if sig != last:
                    last = sig
                    self.say(progress_line(current, self.elapsed()))
                # finished, and (the controller's status says) Knative serves its final split
                if current.status.phase.terminal and current.status.traffic_applied:
                    return current
            await asyncio.sleep(0.25)
        raise TimeoutError(f"the rollout of {candidate} did not finish in {self.options.stage_timeout:.0f}s")

    def latest_created(self) -> str | None:
        svc = self.store.get(kinds.KSERVICES, NAMESPACE, SERVICE) or {}
        name = (svc.get("status") or {}).get("latestCreatedRevisionName")
        return str(name) if name else None

    async def new_revision(self, change: Callable[[dict[str, Any]], None]) -> str:
        before = self.latest_created()
        self.update_service(change)
        while True:
            now = self.latest_created()
            if now and now != before:
                return now
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _controller(
    env: SandboxEnvironment, kubeconfig: Path, windows: OutcomeWindows | None
) -> AsyncIterator[Controller]:
    client = await KubeClient.connect(str(kubeconfig))
    measure = None
    if windows is not None:
        source = DirectMetricSource(windows, env.clock.now)

        async def measure_direct(requests: Any) -> Any:
            return await run_tick(requests, lambda _ref: source)

        measure = measure_direct
    prometheus_url = env.prometheus.url if env.prometheus is not None else None
    config = ControllerConfig(
        workers=4,
        defaults=ControllerDefaults(prometheus_url=prometheus_url),
        informer=InformerSettings(watch_timeout=30, read_timeout=10.0, resync=30.0),
        analysis_settle=1.2 if env.prometheus is not None else 0.2,
    )
    ctl = Controller(client, config, measure=measure)
    try:
        async with running(ctl):
            await asyncio.wait_for(ctl.started.wait(), timeout=15)
            yield ctl
    finally:
        await client.close()


async def run_demo(options: DemoOptions, out: TextIO) -> int:
    use_prometheus = options.prometheus and shutil.which("prometheus") is not None
    sandbox = SandboxOptions(
        rps=options.rps,
        seed=options.seed,
        ready_delay=1.0,
        cold_start=0.5,
        prometheus=use_prometheus,
        scrape_interval=1.0,
    )
    with tempfile.TemporaryDirectory(prefix="rollout-demo-") as tmp:
        async with sandbox_environment(sandbox) as env:
            demo = Demo(env, out, options)
            for text in render_crds().values():
                env.store.create(kinds.CRDS, yaml.safe_load(text))
            kubeconfig = env.api.write_kubeconfig(options.keep_kubeconfig or Path(tmp) / "kubeconfig")
            windows: OutcomeWindows | None = None
            if env.prometheus is not None:
                metrics_path = (
                    f"a real Prometheus at {env.prometheus.url} scraping the simulated queue-proxies every 1s"
                )
            else:
                windows = OutcomeWindows(env.clock.now)
                env.generator.exporters.append(windows)
                why = "not installed" if options.prometheus else "turned off (--no-prometheus)"
                metrics_path = (
                    "the sandbox's own metrics path (Prometheus is "
                    + why
                    + "; the controller reads the traffic "
                    "generator's counters directly — install Debian's `prometheus` package to see the real path)"
                )
            demo.say("knative-rollout demo — everything runs in this process, on 127.0.0.1")
            demo.say(f"  API server   {env.api.url}   (kubeconfig {kubeconfig})")
            demo.say(f"  metrics      {metrics_path}")
            demo.say(
                "  policy       demo-canary: 10% -> 25% -> 50% (15s bakes), compared with stable every 5s"
            )
            demo.say("")
            async with _controller(env, kubeconfig, windows):
                env.store.create(POLICIES, manifest("policy.yaml"))
                env.store.create(kinds.KSERVICES, manifest("service.yaml"))
                demo.say(
                    f"{format_elapsed(demo)}  applied RolloutPolicy demo-canary and Service hello (v1, 0.5% errors)"
                )
                await demo.wait_pinned()
                demo.say(f"{format_elapsed(demo)}  controller pinned traffic: hello-00001 100% (tag stable)")
                demo.say("")
                outcomes: list[Outcome] = []
                for label, change in (
                    (
                        "v2: healthy (0.5% errors)",
                        _behaviour("ghcr.io/knative/helloworld-go:v2", "0.005", "50ms"),
                    ),
                    (
                        "v3: broken (15% errors)",
                        _behaviour("ghcr.io/knative/helloworld-go:v3", "0.15", "50ms"),
                    ),
                ):
                    start = time.monotonic()
                    candidate = await demo.new_revision(change)
                    demo.say(f"{format_elapsed(demo)}  deployed {label} as revision {candidate}")
                    finished = await demo.follow(candidate)
                    outcomes.append(Outcome(label, finished, time.monotonic() - start))
                    demo.say("")
            demo.say(summary(outcomes, metrics_path))
            ok = [o.rollout.status.phase.value for o in outcomes] == ["Succeeded", "RolledBack"]
            return 0 if ok else 1


def format_elapsed(demo: Demo) -> str:
    from rollout.api.durations import format_duration

    return f"{format_duration(int(demo.elapsed())):>6}"
