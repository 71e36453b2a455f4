"""The analysis scheduler: rollouts whose windows end together are measured in ONE tick, with one query per
(source, template, window) — the count `plan_tick` makes — and each rollout gets its own observations."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from rollout.analysis.batching import AnalysisRequest, Answer, plan_tick
from rollout.api.rollout import Phase, Rollout
from rollout.controller.analysis import AnalysisScheduler, analysis_requests
from rollout.controller.schedule import Tick, analysis_tick, window_valid
from rollout.controller.views import ObjectKey
from rollout.engine.observations import MeasurementError, RequestCounts
from tests.controller.objects import rollout
from tests.engine.world import T0

POLICY: dict[str, Any] = {
    "strategy": {"canary": {"steps": [{"weight": 10}], "interval": "10s"}},
    "analysis": {
        "interval": "10s",
        "metrics": [
            {"name": "errors", "builtin": "errorRate", "threshold": {"max": 0.01}},
            {"name": "p99", "builtin": "latency", "threshold": {"max": 0.5}},
            {
                "name": "custom",
                "query": 'sum(rate(x{ns="{{ namespace }}"}[{{ interval }}]))',
                "threshold": {"max": 1},
            },
        ],
    },
    "metricSource": {"prometheus": {"address": "http://127.0.0.1:9090"}},
}


def running(candidate: str, started: datetime) -> Rollout:
    gen = int(candidate.rsplit("-", 1)[1])
    r = rollout(candidate, phase=Phase.PROGRESSING, policy=POLICY, generation=gen)
    status = r.status.model_copy(
        update={"traffic_applied": True, "step_started_at": started, "started_at": started}
    )
    return r.model_copy(update={"status": status})


def key(r: Rollout) -> ObjectKey:
    return ObjectKey("Service", "default", r.spec.candidate_revision)


async def test_rollouts_due_together_share_one_tick_and_one_query_per_template() -> None:
    rollouts = [running(f"svc{i}-00002", T0 + timedelta(seconds=i * 0.45)) for i in range(20)]
    calls: list[Sequence[AnalysisRequest]] = []

    async def measure(requests: Sequence[AnalysisRequest]) -> Mapping[AnalysisRequest, Answer]:
        calls.append(requests)
        return {r: Answer(RequestCounts(100, 1), RequestCounts(100, 0)) for r in requests}

    woken: list[ObjectKey] = []
    now = T0 + timedelta(seconds=21)
    scheduler = AnalysisScheduler(measure, woken.append, clock=lambda: now)
    ticks = set()
    for r in rollouts:
        tick = analysis_tick(r, now)
        assert tick is not None and tick.ready
        ticks.add(tick)
        scheduler.want(key(r), r, tick)
    assert len(ticks) == 1  # steps started over 9s, their windows aligned to the same 10s boundary
    (tick,) = ticks
    await scheduler.run_due(tick.end)
    assert len(calls) == 1 and len(calls[0]) == 60  # 20 rollouts x 3 metrics, in one tick
    report = scheduler.reports[-1]
    # builtin error rate and latency: one query each for all 20 rollouts; the custom template has no
    # per-revision variable, so its one rendered text is shared too
    assert (report.rollouts, report.queries) == (20, 3)
    assert sorted(map(str, woken)) == sorted(str(key(r)) for r in rollouts)
    measured = scheduler.take(rollouts[3])
    assert measured is not None and measured[0] == tick
    obs = measured[1]
    assert set(obs) == {"errors", "p99", "custom"}
    assert obs["errors"].canary == RequestCounts(100, 1)
    assert (obs["errors"].start, obs["errors"].end) == (tick.start, tick.end)
    scheduler.consumed(rollouts[3])
    assert scheduler.take(rollouts[3]) is None


def test_requests_name_the_window_the_revisions_and_the_source() -> None:
    r = running("svc-00002", T0)
    tick = Tick(T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), True)
    reqs = analysis_requests(r, tick)
    assert [q.metric for q in reqs] == ["errors", "p99", "custom"]
    assert {(q.canary, q.stable, q.window_seconds, q.at) for q in reqs} == {
        ("svc-00002", "hello-00001", 10.0, tick.end)
    }
    assert len(plan_tick(reqs).batches) == 3


def test_a_latency_comparison_asks_for_the_buckets_its_status_says_it_reads() -> None:
    compared = {"name": "latency", "builtin": "latency", "compare": {}}
    policy = {**POLICY, "analysis": {"interval": "10s", "metrics": [compared]}}
    r = rollout("svc-00002", phase=Phase.PROGRESSING, policy=policy, generation=2)
    tick = Tick(T0, T0 + timedelta(seconds=10), True)
    (first,) = analysis_requests(r, tick)
    assert first.buckets is None  # its thresholds come from the first window: every bucket
    streams = [{"edge": 0.35}, {"edge": 0.06}, {"edge": 0.15}]
    chosen = r.status.model_copy(update={"judge_state": {"latency": {"compare": {"streams": streams}}}})
    (later,) = analysis_requests(r.model_copy(update={"status": chosen}), tick)
    assert later.buckets == (0.06, 0.15, 0.35)
    # a threshold on p99 reads every bucket, whatever its status holds
    guarded = running("svc-00002", T0)
    held = guarded.status.model_copy(update={"judge_state": {"p99": {"compare": {"streams": streams}}}})
    reqs = analysis_requests(guarded.model_copy(update={"status": held}), tick)
    assert all(q.buckets is None for q in reqs)


async def test_a_failing_measurement_gives_errors_not_a_crash() -> None:
    async def broken(requests: Sequence[AnalysisRequest]) -> Mapping[AnalysisRequest, Answer]:
        raise RuntimeError("boom")

    r = running("svc-00002", T0)
    now = T0 + timedelta(seconds=25)
    scheduler = AnalysisScheduler(broken, lambda k: None, clock=lambda: now)
    tick = analysis_tick(r, now)
    assert tick is not None
    scheduler.want(key(r), r, tick)
    await scheduler.run_due(tick.end)
    measured = scheduler.take(r)
    assert measured is not None and all(isinstance(o.canary, MeasurementError) for o in measured[1].values())


def test_a_measured_window_is_judged_only_within_the_current_step_and_after_the_last_analysis() -> None:
    r = running("svc-00002", T0 + timedelta(seconds=10.4))  # step traffic served at 10.4s (stored as 10s)
    before = Tick(T0, T0 + timedelta(seconds=10), True)
    slow_answer = Tick(T0 + timedelta(seconds=20), T0 + timedelta(seconds=30), True)
    assert not window_valid(r, before)
    assert window_valid(r, slow_answer)  # older than the latest complete window by now: still valid evidence
    analysed = r.model_copy(
        update={"status": r.status.model_copy(update={"last_analysis_at": slow_answer.end})}
    )
    assert not window_valid(analysed, slow_answer)
    paused_gate = r.model_copy(update={"status": r.status.model_copy(update={"traffic_applied": False})})
    assert not window_valid(paused_gate, slow_answer)


async def test_the_same_window_is_measured_once_however_often_it_is_wanted() -> None:
    calls = 0

    async def measure(requests: Sequence[AnalysisRequest]) -> Mapping[AnalysisRequest, Answer]:
        nonlocal calls
        calls += 1
        return {}

    r = running("svc-00002", T0)
    early = analysis_tick(r, T0 + timedelta(seconds=5))
    late = analysis_tick(r, T0 + timedelta(seconds=15))
    assert early is not None and late is not None and not early.ready and late.ready and early == late
    scheduler = AnalysisScheduler(measure, lambda k: None, clock=lambda: T0 + timedelta(seconds=15))
    scheduler.want(key(r), r, early)
    scheduler.want(key(r), r, late)  # the same window, now due
    await scheduler.run_due(late.end)
    scheduler.want(key(r), r, late)  # measured, not yet consumed
    later = Tick(late.end, late.end + timedelta(seconds=10), True)
    scheduler.want(key(r), r, later)  # one window per rollout at a time
    assert scheduler.pending == 0 and calls == 1


async def test_late_askers_for_a_measured_window_are_gathered_into_one_more_tick() -> None:
    """Rollouts whose reconciles were queued ask for a window that was measured already: one more tick serves
    them together (after `coalesce`), not one tick each."""
    calls: list[int] = []

    async def measure(requests: Sequence[AnalysisRequest]) -> Mapping[AnalysisRequest, Answer]:
        calls.append(len(requests))
        return {}

    now = T0 + timedelta(seconds=21)
    rollouts = [running(f"late{i}-00002", T0) for i in range(6)]
    scheduler = AnalysisScheduler(measure, lambda k: None, clock=lambda: now, settle=0.0, coalesce=0.3)
    task = asyncio.create_task(scheduler.run())
    try:
        first = analysis_tick(rollouts[0], now)
        assert first is not None
        scheduler.want(key(rollouts[0]), rollouts[0], first)
        for _ in range(20):  # the first asker's tick runs at once
            await asyncio.sleep(0.01)
            if calls:
                break
        for r in rollouts[1:]:  # then the late ones, one by one
            scheduler.want(key(r), r, first)
            await asyncio.sleep(0.02)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if scheduler.pending == 0 and sum(calls) == 18:
                break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert calls == [3, 15]  # 1 rollout x 3 metrics, then the 5 late ones together
