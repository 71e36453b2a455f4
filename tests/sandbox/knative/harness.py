"""A store + Knative simulator on a virtual clock, for tests."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.apiserver.store import MemoryStore
from rollout_lab.sandbox.clock import VirtualClock
from rollout_lab.sandbox.knative.controller import KnativeSimulator
from rollout_lab.sandbox.knative.fleet import Fleet
from rollout_lab.sandbox.knative.plan import Settings


@dataclass
class Sandbox:
    clock: VirtualClock
    store: MemoryStore
    sim: KnativeSimulator

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    def get(self, rt: Any, name: str, namespace: str = "default") -> dict[str, Any]:
        obj = self.store.get(rt, namespace, name)
        assert obj is not None, f"{rt.kind} {namespace}/{name} not found"
        return obj

    def service(self, name: str = "hello") -> dict[str, Any]:
        return self.get(kinds.KSERVICES, name)

    def route(self, name: str = "hello") -> dict[str, Any]:
        return self.get(kinds.ROUTES, name)

    def revision(self, name: str) -> dict[str, Any]:
        return self.get(kinds.REVISIONS, name)

    def revisions(self, namespace: str = "default") -> list[str]:
        items, _ = self.store.list(kinds.REVISIONS, namespace)
        return [str(r["metadata"]["name"]) for r in items]

    def update_service(self, name: str = "hello", **changes: Any) -> dict[str, Any]:
        """Apply `template=...` (dict merged into spec.template), `traffic=...`, `annotations=...`."""
        service = copy.deepcopy(self.service(name))
        spec = service["spec"]
        if "template" in changes:
            spec["template"] = changes["template"]
        if "traffic" in changes:
            spec["traffic"] = changes["traffic"]
        if "annotations" in changes:
            service["metadata"]["annotations"] = changes["annotations"]
        service.pop("status", None)
        return self.store.update(kinds.KSERVICES, service)


def template(
    image: str, *, name: str | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if name:
        metadata["name"] = name
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"containers": [{"image": image}]}}


def service_manifest(
    name: str = "hello",
    image: str = "ghcr.io/acme/hello:v1",
    *,
    revision_name: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template(image, name=revision_name, annotations=annotations)}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


@asynccontextmanager
async def sandbox(settings: Settings | None = None, ready_delay: float = 2.0) -> AsyncIterator[Sandbox]:
    clock = VirtualClock()
    store = MemoryStore(clock=clock.now)
    sim = KnativeSimulator(
        store, clock, fleet=Fleet(seed=3, default_ready_delay=ready_delay), settings=settings
    )
    sim.install()
    task = asyncio.ensure_future(sim.run())
    try:
        yield Sandbox(clock, store, sim)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
