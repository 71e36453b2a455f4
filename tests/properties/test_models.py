"""The RolloutPolicy model, as a user reaches it (lint, the controller): any document gives a policy or
located problems, never an exception; what the model accepts the API server accepts too (the CRD's schema
and CEL rules, as the sandbox applies them), so lint never passes a policy the cluster refuses; and an
accepted policy reads back the same from its wire form."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from rollout.api.crd import render_crds
from rollout.api.load import parse_policy, parse_rollout
from rollout_lab.sandbox.apiserver.schema import apply_schema

SCHEMA = next(
    yaml.safe_load(text)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name, text in render_crds().items()
    if name.startswith("rolloutpolicies.")
)

_junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4), st.just([]), st.just({}))


def or_junk(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes anything: enough documents pass to compare with the CRD."""
    return st.sampled_from([*[False] * 15, True]).flatmap(lambda junk: _junk if junk else good)


duration = or_junk(st.sampled_from(["30s", "1m", "0s", "1h30m", "250ms", "2h", "400d", "1.5s"]))
percent = or_junk(st.integers(-1, 101))
number = or_junk(st.one_of(st.floats(-1, 2, allow_nan=False), st.integers(0, 500)))
name = or_junk(st.sampled_from(["error-rate", "latency", "m", "Bad_Name", ""]))
inconclusive = or_junk(st.sampled_from(["hold", "promote", "rollback"]))


def some(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


step = st.one_of(
    st.builds(lambda w, rest: {"weight": w, **rest}, percent, some(bake=duration)),
    st.builds(lambda p: {"pause": p}, some(duration=duration)),
)
canary = st.builds(
    lambda ladder, rest: {**ladder, **rest},
    st.one_of(
        st.builds(lambda steps: {"steps": steps}, st.lists(step, min_size=1, max_size=4)),
        some(stepWeight=percent, maxWeight=percent),
    ),
    some(interval=duration, onInconclusive=inconclusive),
)
blue_green = some(
    previewTag=name, analysisDuration=duration, manualPromotion=st.booleans(), onInconclusive=inconclusive
)
ab_test = some(
    routing=st.sampled_from(["header", "split", "both"]),
    splitPercent=percent,
    duration=duration,
    promoteOnSuccess=st.booleans(),
    onInconclusive=inconclusive,
    controlTag=name,
    treatmentTag=name,
)
strategy = st.one_of(
    st.builds(lambda c: {"canary": c}, canary),
    st.builds(lambda b: {"blueGreen": b}, blue_green),
    st.builds(lambda a: {"abTest": a}, ab_test),
    some(canary=canary, abTest=ab_test),
)
metric = st.builds(
    lambda n, rest: {"name": n, **rest},
    name,
    some(
        builtin=or_junk(st.sampled_from(["errorRate", "latency", "cpu"])),
        query=st.one_of(
            st.just('sum(rate(x{revision="{{ revision }}"}[{{ interval }}]))'), st.text(max_size=8)
        ),
        threshold=some(max=number, min=number),
        compare=some(alpha=number, earlyStop=st.booleans(), earlyStopMargin=number),
        noData=or_junk(st.sampled_from(["wait", "pass", "fail"])),
        dryRun=st.booleans(),
        quantile=number,
    ),
)
analysis = some(
    interval=duration,
    warmup=duration,
    alpha=number,
    minRequests=or_junk(st.integers(-1, 100)),
    noData=or_junk(st.sampled_from(["wait", "pass", "fail"])),
    metrics=st.lists(metric, max_size=3),
)
spec = st.builds(
    lambda s, rest: {"strategy": s, **rest},
    strategy,
    some(
        analysis=analysis,
        deadlines=some(
            candidateReady=duration,
            rollout=duration,
            onRolloutDeadline=st.sampled_from(["rollback", "pause", "x"]),
        ),
    ),
)


def document(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": body,
    }


@given(spec)
@example({"strategy": {"canary": {"steps": [{"weight": False}]}}})  # found by this test: lax int
@example({"strategy": {"canary": {"steps": [{"weight": "10"}]}}})
@example({"strategy": {"canary": {"steps": [{"weight": 10.0}]}}, "analysis": {"alpha": "0.05"}})
def test_what_the_model_accepts_the_api_server_accepts(body: dict[str, Any]) -> None:
    doc = document(body)
    policy, problems = parse_policy(copy.deepcopy(doc))
    assert (policy is None) == bool(problems)
    assert all(p.path and p.message for p in problems)
    if policy is None:
        return
    causes = apply_schema(SCHEMA, copy.deepcopy(doc)).causes
    assert not causes, f"lint accepts what the API server refuses: {causes}"
    again, problems = parse_policy(policy.to_wire())
    assert again == policy and not problems


ROLLOUT: dict[str, Any] = {
    "apiVersion": "knrollout.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "hello-00002.1", "namespace": "default", "generation": 1},
    "spec": {
        "target": {"name": "hello"},
        "stableRevision": "hello-00001",
        "candidateRevision": "hello-00002",
        "policy": {
            "name": "p",
            "generation": 1,
            "hash": "x",
            "spec": {"strategy": {"canary": {"stepWeight": 10, "maxWeight": 50}}},
        },
    },
    "status": {
        "phase": "Progressing",
        "currentStep": 1,
        "canaryWeight": 20,
        "stepStartedAt": "2026-12-06T10:00:00.000000Z",
    },
}
status_fields = some(
    phase=or_junk(st.sampled_from(["Pending", "Progressing", "Paused", "Succeeded", "Unknown"])),
    currentStep=or_junk(st.integers(-1, 9)),
    canaryWeight=or_junk(st.integers(-1, 101)),
    stepStartedAt=or_junk(
        st.sampled_from(["2026-12-06T10:00:00Z", "2026-12-06T10:00:00.123456Z", "yesterday"])
    ),
    analysis=st.lists(
        some(name=name, verdict=or_junk(st.sampled_from(["Pass", "Fail", "NoData"]))), max_size=2
    ),
)
requests = st.one_of(
    st.none(), some(action=or_junk(st.sampled_from(["promote", "abort", "explode"])), id=name)
)


@given(status_fields, requests)
def test_a_stored_rollout_parses_or_says_where_it_is_wrong(
    status: dict[str, Any], request: dict[str, Any] | None
) -> None:
    """The controller reads every Rollout in the cluster; one with a field it cannot read is reported, never
    an exception, and what it reads it writes back the same."""
    obj = copy.deepcopy(ROLLOUT)
    obj["status"].update(status)
    if request is not None:
        obj["spec"]["request"] = request
    rollout, problems = parse_rollout(obj)
    assert (rollout is None) == bool(problems)
    if rollout is not None:
        again, problems = parse_rollout(rollout.to_wire())
        assert again == rollout and not problems
