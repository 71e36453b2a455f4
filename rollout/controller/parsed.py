"""Rollouts parsed with their embedded policy validated once per distinct content.

Every reconcile of a target parses its Rollouts (the running one and its history, up to `historyLimit`), and
/metrics parses all of them at each scrape. Most of a parse is the policy each Rollout embeds
(`spec.policy.spec`, frozen at its start): reusing an already validated policy cuts a parse by more than half
(bench/parse_rollouts.py; the numbers are in docs/benchmark.md). Rollouts started from the same policy generation embed the same
policy, and a Rollout's own status writes do not touch it, so the validated policy is kept by its exact
content (its JSON with sorted keys) and handed to pydantic as a model instance, which it takes without
validating again. Everything else in the object is validated at every parse, as before; an embedded policy
seen for the first time, or one that does not validate, goes through the full parse, so problems are
reported exactly as `parse_rollout` reports them.

Memory: one model per distinct embedded policy (at most `capacity`, least recently used dropped), shared by
every Rollout parsed from it, instead of one copy per Rollout.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson

from rollout.api.load import FieldProblem, object_body, parse, parse_rollout
from rollout.api.policy import RolloutPolicySpec
from rollout.api.rollout import Rollout


def _embedded_policy(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], bytes] | None:
    """The Rollout's spec, its spec.policy and the policy spec's canonical JSON, when they are mappings."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return None
    policy = spec.get("policy")
    if not isinstance(policy, Mapping):
        return None
    raw = policy.get("spec")
    if not isinstance(raw, Mapping):
        return None
    try:
        key = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON (cannot come from the API server): no sharing
        return None
    return spec, policy, key


class RolloutParser:
    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._policies: OrderedDict[bytes, RolloutPolicySpec] = OrderedDict()
        self.shared = 0  # parses that reused a validated policy
        self.full = 0

    def __len__(self) -> int:
        return len(self._policies)

    def parse(self, obj: Mapping[str, Any]) -> tuple[Rollout | None, list[FieldProblem]]:
        """What `parse_rollout(obj)` returns."""
        found = _embedded_policy(obj)
        known = self._policies.get(found[2]) if found is not None else None
        if found is None or known is None:
            self.full += 1
            rollout, problems = parse_rollout(obj)
            if rollout is not None and found is not None:
                self._keep(found[2], rollout.spec.policy.spec)
            return rollout, problems
        spec, policy, key = found
        self._policies.move_to_end(key)
        self.shared += 1
        body = object_body(obj)
        body["spec"] = {**spec, "policy": {**policy, "spec": known}}
        return parse(Rollout, body)

    def _keep(self, key: bytes, policy: RolloutPolicySpec) -> None:
        self._policies[key] = policy
        while len(self._policies) > self.capacity:
            self._policies.popitem(last=False)
