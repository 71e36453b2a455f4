"""A Knative Service under test in a real cluster: deploy it, release new revisions, read its traffic, its
Rollouts and their Events, act on a Rollout like `rollout promote|abort|pause|resume|retry` does, and watch
every split Knative serves while a rollout runs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.e2e.cluster import Kube, Obj, Settings
from tests.e2e.workload import service

ROLLOUTS = "/apis/knrollout.dev/v1alpha1/namespaces/{ns}/rollouts"
SERVICES = "/apis/serving.knative.dev/v1/namespaces/{ns}/services"
REVISIONS = "/apis/serving.knative.dev/v1/namespaces/{ns}/revisions"
TERMINAL = {"Succeeded", "RolledBack", "Failed", "Aborted", "Superseded"}


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float, what: str, every: float = 1.0
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within:g}s (last: {last!r})")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def polling(step: Callable[[], Awaitable[None]], every: float = 0.5) -> AsyncIterator[None]:
    """Run `step` every `every` seconds while the block runs; a step that fails is tried again next time."""

    async def poll() -> None:
        while True:
            with contextlib.suppress(Exception):
                await step()
            await asyncio.sleep(every)

    task = asyncio.create_task(poll())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def split_of(status_traffic: list[Obj]) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in status_traffic:
        if entry.get("revisionName") and entry.get("percent"):
            out[entry["revisionName"]] = out.get(entry["revisionName"], 0) + int(entry["percent"])
    return out


def allowed_splits(stable: str, candidate: str, weights: list[int]) -> list[dict[str, int]]:
    return [{stable: 100}, *({stable: 100 - w, candidate: w} for w in weights), {candidate: 100}]


@dataclass
class App:
    kube: Kube
    settings: Settings
    namespace: str
    name: str
    policy: str | None
    served: list[dict[str, int]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return SERVICES.format(ns=self.namespace) + "/" + self.name

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.{self.settings.domain}"

    def revision(self, generation: int) -> str:
        return f"{self.name}-{generation:05d}"

    async def deploy(self, **behaviour: Any) -> None:
        body = service(
            self.name, self.namespace, self.settings.image, policy=self.policy, version="1", **behaviour
        )
        await self.kube.create(SERVICES.format(ns=self.namespace), body)

    async def release(self, version: str, **behaviour: Any) -> None:
        """A new template (what a merged pull request does): Knative creates the next revision."""
        body = service(
            self.name, self.namespace, self.settings.image, policy=self.policy, version=version, **behaviour
        )
        await self.kube.merge_patch(self.path, {"spec": {"template": body["spec"]["template"]}})

    async def get(self) -> Obj:
        obj = await self.kube.get(self.path)
        assert obj is not None, f"Service {self.namespace}/{self.name} is gone"
        return obj

    async def spec_traffic(self) -> list[Obj]:
        traffic: list[Obj] = (await self.get())["spec"].get("traffic") or []
        return traffic

    async def served_split(self) -> dict[str, int]:
        return split_of(((await self.get()).get("status") or {}).get("traffic") or [])

    async def wait_pinned(self, within: float = 180) -> str:
        """Until the controller has pinned the first revision: returns the stable revision."""

        async def pinned() -> str | None:
            for entry in await self.spec_traffic():
                if entry.get("tag") == "stable" and entry.get("percent") == 100:
                    return str(entry["revisionName"])
            return None

        stable: str = await eventually(pinned, within, f"{self.name} pinned by the controller")
        return stable

    async def revision_object(self, name: str) -> Obj:
        obj = await self.kube.get(REVISIONS.format(ns=self.namespace) + "/" + name)
        assert obj is not None, f"Revision {self.namespace}/{name} is gone"
        return obj

    async def rollout(self, name: str) -> Obj | None:
        return await self.kube.get(ROLLOUTS.format(ns=self.namespace) + "/" + name)

    async def wait_phase(self, rollout: str, phases: set[str], within: float) -> Obj:
        async def reached() -> Obj | None:
            obj = await self.rollout(rollout)
            phase = ((obj or {}).get("status") or {}).get("phase")
            return obj if phase in phases else None

        obj: Obj = await eventually(reached, within, f"rollout {rollout} in {sorted(phases)}")
        return obj

    async def reasons(self, involved: str) -> list[str]:
        events = await self.kube.items(
            f"/api/v1/namespaces/{self.namespace}/events?fieldSelector=involvedObject.name={involved}"
        )
        events.sort(key=lambda e: e.get("lastTimestamp") or e["metadata"].get("creationTimestamp") or "")
        return [str(e.get("reason")) for e in events]

    async def request(self, rollout: str, action: str) -> None:
        """What `rollout promote|abort|pause|resume|retry` writes: spec.request on the Rollout."""
        request = {
            "action": action,
            "id": uuid.uuid4().hex[:12],
            "requestedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "requestedBy": "e2e",
            "reason": f"e2e asks to {action}",
        }
        await self.kube.merge_patch(
            ROLLOUTS.format(ns=self.namespace) + "/" + rollout, {"spec": {"request": request}}
        )

    @contextlib.asynccontextmanager
    async def recording_splits(self, every: float = 0.5) -> AsyncIterator[list[dict[str, int]]]:
        """Every distinct split Knative serves (status.traffic) while the block runs."""
        seen: list[dict[str, int]] = []

        async def record() -> None:
            split = await self.served_split()
            if split and (not seen or seen[-1] != split):
                seen.append(split)

        async with polling(record, every):
            yield seen
