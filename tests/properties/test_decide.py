"""The engine's `decide`, for any sequence of observations (time, readiness, the split Knative serves,
analysis verdicts with or without data, errors, manual requests): the planned split is a valid Knative split
that never gives the candidate more than the step allows, a finished rollout stays finished, and a rollout
is only promoted by its analysis when every gating metric's last window was measured and passed (or the
policy says noData: pass), or by a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rollout.api.rollout import TERMINAL_PHASES, MetricResult, Phase, RequestAction, Verdict
from rollout.engine.inputs import AnalysisUpdate, Decision
from rollout.engine.observations import ObservedTraffic
from rollout.engine.steps import engine_steps
from rollout.engine.transitions import Event
from rollout.engine.windows import analysis_due
from tests.engine.world import World, make_rollout

POLICIES: tuple[dict[str, Any], ...] = (
    {
        "strategy": {
            "canary": {"steps": [{"weight": 10, "bake": "1m"}, {"pause": {"duration": "1m"}}, {"weight": 40}]}
        }
    },
    {
        "strategy": {"canary": {"stepWeight": 25, "maxWeight": 50, "interval": "1m"}},
        "analysis": {"noData": "pass"},
    },
    {"strategy": {"canary": {"steps": [{"weight": 30, "bake": "2m"}], "onInconclusive": "hold"}}},
    {"strategy": {"abTest": {"duration": "2m", "promoteOnSuccess": True, "routing": "split"}}},
    {"strategy": {"blueGreen": {"analysisDuration": "2m"}}, "deadlines": {"rollout": "10m"}},
)
VERDICTS = (Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.NO_DATA, Verdict.ERROR)
REQUESTS = (RequestAction.PAUSE, RequestAction.RESUME, RequestAction.PROMOTE, RequestAction.ABORT)


@dataclass(frozen=True)
class Tick:
    seconds: int
    ready: bool | None
    knative_follows: bool
    verdict: Verdict | None  # None: no analysis due or none delivered
    no_worse: bool
    request: RequestAction | None


# mostly an ordinary rollout, now and then a fault or a person: enough sequences reach every phase
ticks = st.builds(
    Tick,
    seconds=st.sampled_from([1, 5, 15, 30, 30, 30, 60, 120]),
    ready=st.sampled_from([*[True] * 40, None, False]),
    knative_follows=st.sampled_from([True, True, True, True, False]),
    verdict=st.sampled_from([None, *[Verdict.PASS] * 6, *VERDICTS]),
    no_worse=st.booleans(),
    request=st.sampled_from([*[None] * 40, *REQUESTS]),
)


def analysis(w: World, t: Tick) -> AnalysisUpdate:
    assert t.verdict is not None
    fresh = t.verdict not in (Verdict.NO_DATA, Verdict.ERROR)
    results = tuple(
        MetricResult(
            name=m,
            verdict=t.verdict,
            no_worse=t.no_worse and t.verdict == Verdict.PASS,
            measured_at=w.now,
            last_data_at=w.now if fresh else None,
            errored_at=w.now if t.verdict == Verdict.ERROR else None,
        )
        for m in ("error-rate", "latency")
    )
    failed = ("error-rate",) if t.verdict == Verdict.FAIL else ()
    return AnalysisUpdate(window_end=w.now, results=results, judge_state={}, failed=failed)


def check(w: World, before: Any, d: Decision, max_weight: int) -> None:
    percents = d.plan.percents()
    assert sum(percents.values()) == 100 and all(0 < p <= 100 for p in percents.values())
    candidate = percents.get("hello-00002", 0)
    if d.status.phase not in (Phase.PROMOTING, Phase.SUCCEEDED):
        assert candidate <= max_weight
    if d.status.phase in TERMINAL_PHASES and d.status.phase != Phase.SUCCEEDED:
        assert candidate == 0
    if before.phase in TERMINAL_PHASES:
        assert d.status.phase == before.phase
    if d.event == Event.STEP_DONE_LAST:
        no_data_passes = w.rollout.spec.policy.spec.analysis.no_data.value == "pass"
        started = d.status.step_started_at
        assert started is not None
        for r in d.status.analysis:
            assert r.verdict not in (Verdict.FAIL, Verdict.ERROR), r
            assert no_data_passes or (r.last_data_at is not None and r.last_data_at > started)
    if d.status.phase == Phase.PROMOTING and before.phase != Phase.PROMOTING:
        assert d.event in (Event.STEP_DONE_LAST, Event.PROMOTE_REQUESTED, Event.GATE_OPENED_LAST)


@given(st.sampled_from(POLICIES), st.lists(ticks, min_size=1, max_size=40))
def test_decide_keeps_its_invariants_for_any_sequence_of_observations(
    policy: dict[str, Any], seq: list[Tick]
) -> None:
    w = World(make_rollout(policy))
    steps = engine_steps(w.rollout.spec.policy.spec)
    max_weight = max(s.weight for s in steps)
    for t in seq:
        w.candidate_ready = t.ready
        w.knative_follows = t.knative_follows
        if t.request is not None:
            w.request(t.request)
        due = t.verdict is not None and analysis_due(w.rollout, w.now + timedelta(seconds=t.seconds))
        before = w.status
        d = w.tick(t.seconds, analysis=analysis(w, t) if due else None)
        check(w, before, d, max_weight)
        if not t.knative_follows and w.served is None:
            w.served = ObservedTraffic({"hello-00001": 100}, {"stable": "hello-00001"}, True)
