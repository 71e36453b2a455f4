"""The traffic patcher: the only code that writes a user's Knative object, and only its spec.traffic.

`KnativeTraffic` is the seam (a Knative Service, or a standalone Route): `read()` the object, `write(entries,
precondition)` a merge patch `{metadata: {resourceVersion}, spec: {traffic}}` — a stale resourceVersion is a
409 Conflict, which the caller answers by re-reading and recomputing, never by retrying blindly. Every block
is checked against Knative's traffic rules before it is sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rollout.knative.traffic import validate_traffic, with_configuration
from rollout.kube.client import KubeClient, Obj
from rollout.kube.resources import ROUTES, SERVICES


class TrafficValidator(Protocol):
    def __call__(self, entries: Sequence[dict[str, Any]], *, in_service: bool) -> list[str]:
        """Knative's objections to a traffic block (empty when valid)."""
        ...


class InvalidTraffic(Exception):
    """The controller computed a traffic block Knative would reject; nothing was sent."""


class KnativeTraffic:
    """spec.traffic of one Knative Service or standalone Route."""

    def __init__(
        self,
        client: KubeClient,
        kind: str,
        namespace: str,
        name: str,
        *,
        validator: TrafficValidator,
        configuration: str | None = None,
    ) -> None:
        if kind not in ("Service", "Route"):
            raise ValueError(f"traffic targets are Services and Routes, not {kind}")
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.validator = validator
        self.configuration = configuration
        self.resource = SERVICES if kind == "Service" else ROUTES

    async def read(self) -> Obj | None:
        return await self.client.get(self.resource, self.namespace, self.name)

    def prepare(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The block as it will be sent (Route entries completed), or InvalidTraffic."""
        block = (
            with_configuration(entries, self.configuration)
            if self.kind == "Route"
            else [dict(e) for e in entries]
        )
        problems = self.validator(block, in_service=self.kind == "Service")
        if problems:
            raise InvalidTraffic(f"{self.kind} {self.namespace}/{self.name}: " + "; ".join(problems))
        return block

    async def write(self, entries: Sequence[dict[str, Any]], precondition: str) -> Obj:
        if not precondition:
            raise ValueError("a traffic write needs the resourceVersion it was computed from")
        block = self.prepare(entries)
        patch: Obj = {"metadata": {"resourceVersion": precondition}, "spec": {"traffic": block}}
        return await self.client.merge_patch(self.resource, self.namespace, self.name, patch)


def knative_rules(entries: Sequence[dict[str, Any]], *, in_service: bool) -> list[str]:
    """Knative's webhook rules (rollout.knative.traffic), as messages."""
    return [str(f) for f in validate_traffic(list(entries), in_service=in_service)]
