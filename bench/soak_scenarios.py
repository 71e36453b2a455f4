"""The soak's scenarios (bench/soak.py): what each Service's new revision does in a wave, and the verdict
its rollout deserves."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from bench.soak_check import Expectation
from tests.integration.harness import Cluster

STEPS = [{"weight": 20, "bake": "6s"}, {"weight": 50, "bake": "6s"}]
ANALYSIS: dict[str, Any] = {
    "interval": "2s",
    "minRequests": 10,
    "noData": "wait",
    "failureLimit": {"consecutive": 2, "total": 3},
    "metrics": [
        {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}},
        {"name": "latency-p99", "builtin": "latency", "quantile": 0.99, "threshold": {"max": 0.4}},
    ],
}
DEADLINES = {"candidateReady": "1m", "rollout": "10m"}


def policies(hook_url: str) -> dict[str, dict[str, Any]]:
    base = {"strategy": {"canary": {"steps": STEPS}}, "analysis": ANALYSIS, "deadlines": DEADLINES}
    hook = {"name": "gate", "type": "step", "url": f"{hook_url}/gate", "timeout": "2s", "retries": 3}
    return {"soak": base, "soak-hooked": {**base, "webhooks": [hook]}}


@dataclass(frozen=True)
class Scenario:
    name: str
    behaviour: dict[str, str]
    phases: frozenset[str]
    policy: str = "soak"


GOOD = frozenset({"Succeeded"})
SCENARIOS = (
    Scenario("good", {}, GOOD),
    Scenario("errors", {"error-rate": "0.4"}, frozenset({"RolledBack"})),
    Scenario("slow", {"latency-median": "700ms", "latency-sigma": "0.2"}, frozenset({"RolledBack"})),
    Scenario(
        "unready",
        {"fail": "ImagePullBackOff", "fail-message": "manifest for acme/soak:bad not found"},
        frozenset({"Failed", "RolledBack"}),
    ),
    Scenario("superseded", {}, frozenset({"Superseded"})),  # then a good revision replaces it
    Scenario("abort", {}, frozenset({"Aborted"})),
    Scenario("webhook", {}, GOOD, policy="soak-hooked"),
)
TERMINAL = frozenset({"Succeeded", "RolledBack", "Failed", "Aborted", "Superseded"})


class Wave:
    """Services (`per_scenario` of each scenario) and the rollouts their waves start."""

    def __init__(self, cluster: Cluster, per_scenario: int, seed: int) -> None:
        self.cluster = cluster
        self.random = random.Random(seed)
        self.services = {f"{s.name}-{i}": s for s in SCENARIOS for i in range(per_scenario)}
        self.generation = dict.fromkeys(self.services, 1)
        self.stable = {svc: f"{svc}-00001" for svc in self.services}
        self.expected: dict[str, Expectation] = {}
        self.waves = 0

    async def onboard(self) -> None:
        for svc, scenario in self.services.items():
            self.cluster.create_service(svc, policy=scenario.policy, image="ghcr.io/acme/soak:v1")
        deadline = time.monotonic() + 60
        while not all(self._pinned(svc) for svc in self.services):
            if time.monotonic() > deadline:
                raise RuntimeError("the controller did not pin every Service within 60 s")
            await asyncio.sleep(0.2)

    def _pinned(self, svc: str) -> bool:
        return any(
            e.get("tag") == "stable" and e.get("percent") == 100 for e in self.cluster.spec_traffic(svc)
        )

    def _revise(self, svc: str, behaviour: dict[str, str], expect: frozenset[str], scenario: str) -> str:
        self.generation[svc] += 1
        candidate = f"{svc}-{self.generation[svc]:05d}"
        self.cluster.new_revision(svc, f"ghcr.io/acme/soak:w{self.waves}-{self.generation[svc]}", behaviour)
        rollout = f"{candidate}.1"
        self.expected[rollout] = Expectation(scenario, expect)
        return rollout

    def _phase(self, rollout: str) -> str | None:
        r = self.cluster.rollout(rollout)
        return r.status.phase.value if r is not None else None

    async def _until(self, rollout: str, phases: set[str], deadline: float) -> str | None:
        while time.monotonic() < deadline:
            phase = self._phase(rollout)
            if phase in phases:
                return phase
            await asyncio.sleep(0.2)
        return None

    async def _one(self, svc: str, scenario: Scenario, deadline: float) -> None:
        rollout = self._revise(svc, scenario.behaviour, scenario.phases, scenario.name)
        if scenario.name in ("superseded", "abort"):
            # a moment into the rollout (Pending or Progressing), while the controller may be down
            await self._until(rollout, {"Progressing"} | TERMINAL, min(deadline, time.monotonic() + 30))
            await asyncio.sleep(self.random.uniform(0.0, 4.0))
            if scenario.name == "abort":
                self.cluster.request(rollout, "abort", request_id=f"soak-{self.waves}", by="soak")
            else:
                rollout = self._revise(svc, {}, GOOD, "good")
        final = await self._until(rollout, set(TERMINAL), deadline)
        if final == "Succeeded":
            self.stable[svc] = rollout.rsplit(".", 1)[0]

    async def run(self, deadline: float) -> None:
        """One wave: a new revision on every Service; returns when all its rollouts ended (or `deadline`)."""
        self.waves += 1
        await asyncio.gather(*(self._one(svc, s, deadline) for svc, s in self.services.items()))

    async def drain(self, deadline: float) -> None:
        """Wait for every rollout started to end (or `deadline`)."""
        while time.monotonic() < deadline:
            if all(self._phase(name) in TERMINAL for name in self.expected):
                return
            await asyncio.sleep(0.5)
