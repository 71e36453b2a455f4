"""The traffic seam: the only code that writes a user's Knative object, and only its spec.traffic
(tests/test_layers.py keeps every other module from patching Services or Routes).

One way through it, as Flagger's router does it:
1. `desired_block(plan, current, configuration, drop_tags)`: the block to send — the plan, the entries users
   added merged back (minus a strategy's finished arms), a standalone Route's `latest` entry naming its
   Configuration. Pure; drift detection compares spec.traffic with the same function's answer.
2. `KnativeTraffic.write(block, precondition)`: Knative's traffic rules checked (nothing is sent when they
   refuse: InvalidTraffic), then one merge patch `{metadata: {resourceVersion}, spec: {traffic}}`. A stale
   resourceVersion is a 409 Conflict, which the caller answers by re-reading and recomputing, never by
   retrying blindly.
3. What Knative serves comes back through the informers (status.traffic; rollout.controller.served)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rollout.engine.plans import TrafficPlan, merge_user_entries
from rollout.knative.traffic import validate_traffic, with_configuration
from rollout.kube.client import KubeClient, Obj
from rollout.kube.resources import ROUTES, SERVICES


class TrafficValidator(Protocol):
    def __call__(self, entries: Sequence[dict[str, Any]], *, in_service: bool) -> list[str]:
        """Knative's objections to a traffic block (empty when valid)."""
        ...


class InvalidTraffic(Exception):
    """The controller computed a traffic block Knative would reject; nothing was sent."""


def desired_block(
    plan: TrafficPlan,
    current: Sequence[Mapping[str, Any]],
    configuration: str | None,
    drop_tags: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Exactly the spec.traffic block to send for `plan` (see the module docstring), so that comparing it
    with spec.traffic says whether a write is needed. `drop_tags`: tags of users' entries not to keep."""
    kept = [e for e in current if e.get("tag") not in drop_tags]
    return with_configuration(merge_user_entries(plan, kept), configuration)


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

    def check(self, block: Sequence[Mapping[str, Any]]) -> None:
        """InvalidTraffic when Knative's rules refuse `block`."""
        problems = self.validator([dict(e) for e in block], in_service=self.kind == "Service")
        if problems:
            raise InvalidTraffic(f"{self.kind} {self.namespace}/{self.name}: " + "; ".join(problems))

    async def write(self, block: Sequence[Mapping[str, Any]], precondition: str) -> Obj:
        """Send `block` (from `desired_block`) if Knative's rules accept it, on condition that the object is
        still at `precondition` (its resourceVersion)."""
        if not precondition:
            raise ValueError("a traffic write needs the resourceVersion it was computed from")
        self.check(block)
        patch: Obj = {
            "metadata": {"resourceVersion": precondition},
            "spec": {"traffic": [dict(e) for e in block]},
        }
        return await self.client.merge_patch(self.resource, self.namespace, self.name, patch)


def knative_rules(entries: Sequence[dict[str, Any]], *, in_service: bool) -> list[str]:
    """Knative's webhook rules (rollout.knative.traffic), as messages."""
    return [str(f) for f in validate_traffic(list(entries), in_service=in_service)]
