"""Rollouts parsed with their embedded policy validated once (rollout.controller.parsed)."""

from __future__ import annotations

import copy
from typing import Any, cast

from rollout.api.load import parse_rollout
from rollout.api.rollout import Phase
from rollout.controller.caches import Caches
from rollout.controller.parsed import RolloutParser
from rollout.kube.client import KubeClient
from tests.controller.objects import POLICY, rollout


def _obj(
    version: str, phase: Phase = Phase.PROGRESSING, name: str = "hello-00002.1", policy: Any = None
) -> dict[str, Any]:
    body = rollout(phase=phase, policy=policy).to_wire()
    body["metadata"].update(name=name, namespace="default", resourceVersion=version)
    return body


def test_rollouts_embedding_the_same_policy_share_one_validated_copy() -> None:
    parser = RolloutParser()
    first, problems = parser.parse(_obj("7"))
    assert first is not None and problems == []
    later, _ = parser.parse(_obj("8", Phase.PAUSED))
    other, _ = parser.parse(_obj("9", Phase.SUCCEEDED, name="hello-00003.1"))
    assert later is not None and other is not None
    assert later.spec.policy.spec is first.spec.policy.spec is other.spec.policy.spec
    assert (parser.full, parser.shared, len(parser)) == (1, 2, 1)
    # everything else is parsed from the object at hand: the same result as the plain parse
    assert later == parse_rollout(_obj("8", Phase.PAUSED))[0]
    assert other == parse_rollout(_obj("9", Phase.SUCCEEDED, name="hello-00003.1"))[0]
    assert later.status.phase == Phase.PAUSED and other.metadata.name == "hello-00003.1"


def test_a_different_policy_is_validated_on_its_own() -> None:
    parser = RolloutParser()
    changed = copy.deepcopy(POLICY)
    changed["strategy"]["canary"]["steps"] = [{"weight": 50}]
    a, _ = parser.parse(_obj("1"))
    b, _ = parser.parse(_obj("2", policy=changed))
    assert a is not None and b is not None
    assert a.spec.policy.spec != b.spec.policy.spec
    assert (parser.full, len(parser)) == (2, 2)
    assert b == parse_rollout(_obj("2", policy=changed))[0]


def test_problems_are_reported_as_the_plain_parse_reports_them() -> None:
    parser = RolloutParser()
    parser.parse(_obj("1"))  # its policy is now known
    bad_status = _obj("2")
    bad_status["status"]["currentStep"] = "two"
    assert parser.parse(bad_status) == parse_rollout(bad_status)
    assert parser.parse(bad_status)[0] is None
    bad_policy = _obj("3")
    bad_policy["spec"]["policy"]["spec"]["steps"] = "every minute"
    result = parser.parse(bad_policy)
    assert result == parse_rollout(bad_policy) and result[0] is None and result[1]
    assert len(parser) == 1  # nothing kept from a policy that did not validate


def test_least_recently_used_policies_are_dropped_beyond_capacity() -> None:
    parser = RolloutParser(capacity=2)
    policies = []
    for weight in (10, 20, 30):
        p = copy.deepcopy(POLICY)
        p["strategy"]["canary"]["steps"] = [{"weight": weight}]
        policies.append(p)
    parser.parse(_obj("1", policy=policies[0]))
    parser.parse(_obj("2", policy=policies[1]))
    parser.parse(_obj("3", policy=policies[0]))  # used again: now the most recent
    parser.parse(_obj("4", policy=policies[2]))  # drops policies[1]
    assert len(parser) == 2
    full = parser.full
    parser.parse(_obj("5", policy=policies[0]))
    assert parser.full == full
    parser.parse(_obj("6", policy=policies[1]))
    assert parser.full == full + 1


def test_the_caches_parse_through_one_parser() -> None:
    caches = Caches.create(cast(KubeClient, None), None)  # never run: the caches are filled by hand
    caches.rollouts._replace(None, [_obj("3", name="a-00002.1"), _obj("4", name="b-00002.1")])
    parsed = caches.parsed_rollouts()
    assert sorted(r.metadata.name for r in parsed) == ["a-00002.1", "b-00002.1"]
    assert parsed[0].spec.policy.spec is parsed[1].spec.policy.spec
    assert (caches.parser.full, caches.parser.shared) == (1, 1)
