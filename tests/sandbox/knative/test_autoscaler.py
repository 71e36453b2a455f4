"""The KPA-like autoscaler (pure) and the fleet's pods: scale with load, to zero, min/max/initial scale."""

from __future__ import annotations

from rollout_lab.sandbox.knative.autoscaler import (
    LoadSample,
    ScalingSpec,
    initial_state,
    scale_step,
    scaling_spec,
)
from rollout_lab.sandbox.knative.fleet import Fleet
from tests.sandbox.knative import crd_schemas


def test_annotations_are_read_with_legacy_spellings() -> None:
    spec = scaling_spec(
        {
            "autoscaling.knative.dev/minScale": "2",
            "autoscaling.knative.dev/max-scale": "5",
            "autoscaling.knative.dev/target": "10",
            "autoscaling.knative.dev/window": "30s",
            "autoscaling.knative.dev/initial-scale": "0",
            "autoscaling.knative.dev/target-utilization-percentage": "50",
        }
    )
    assert (spec.min_scale, spec.max_scale, spec.target, spec.window, spec.initial_scale) == (
        2,
        5,
        10.0,
        30.0,
        0,
    )
    assert spec.per_pod == 5.0
    assert scaling_spec({"autoscaling.knative.dev/window": "soon"}).window == 60.0  # bad value: default
    assert scaling_spec({}, container_concurrency=4).target == 4.0


def step(spec: ScalingSpec, desired: int, concurrency: float, *, ready: int, now: float, last: float | None):
    state = initial_state(spec)
    state = type(state)(desired=desired, reached_initial=True)
    return scale_step(
        spec, state, LoadSample(concurrency, concurrency, last), ready_pods=ready, routed=True, now=now
    ).desired


def test_scales_with_concurrency() -> None:
    spec = ScalingSpec()  # target 100 x 0.7 = 70 per pod
    assert step(spec, 1, 140.0, ready=1, now=100, last=99) == 2
    assert step(spec, 2, 700.0, ready=2, now=100, last=99) == 10
    assert step(spec, 1, 10.0, ready=1, now=100, last=99) == 1


def test_scale_down_at_most_halves() -> None:
    spec = ScalingSpec()
    assert step(spec, 10, 10.0, ready=10, now=100, last=99) == 5


def test_scale_to_zero_after_idle_window_and_grace_only() -> None:
    spec = ScalingSpec(window=60, scale_to_zero_grace=30)
    assert step(spec, 1, 0.0, ready=1, now=100, last=50) == 1  # 50 s idle
    assert step(spec, 1, 0.0, ready=1, now=100, last=10) == 0  # 90 s idle
    assert step(ScalingSpec(min_scale=2), 2, 0.0, ready=2, now=1000, last=None) == 2


def test_min_scale_only_for_routed_revisions_and_max_scale_always() -> None:
    spec = ScalingSpec(min_scale=3, max_scale=4)
    state = initial_state(spec)
    idle = LoadSample(0.0, 0.0, None)
    assert scale_step(spec, state, idle, ready_pods=1, routed=True, now=1000).desired == 3
    reached = type(state)(desired=1, reached_initial=True)
    assert scale_step(spec, reached, idle, ready_pods=1, routed=False, now=1000).desired == 0
    busy = LoadSample(7000.0, 7000.0, 999.0)
    assert scale_step(spec, reached, busy, ready_pods=1, routed=True, now=1000).desired == 4


def test_initial_scale_holds_until_reached() -> None:
    spec = ScalingSpec(initial_scale=3)
    state = initial_state(spec)
    assert state.desired == 3
    idle = LoadSample(0.0, 0.0, None)
    assert scale_step(spec, state, idle, ready_pods=0, routed=True, now=0).desired == 3
    state = scale_step(spec, state, idle, ready_pods=3, routed=True, now=1)
    assert state.reached_initial
    state = scale_step(spec, state, idle, ready_pods=3, routed=True, now=200)
    assert state.desired == 1  # at most halving per tick
    assert scale_step(spec, state, idle, ready_pods=1, routed=True, now=202).desired == 0


def test_panic_mode_keeps_the_scale_up() -> None:
    spec = ScalingSpec(window=60)
    state = type(initial_state(spec))(desired=1, reached_initial=True)
    burst = LoadSample(stable_concurrency=70.0, panic_concurrency=700.0, last_request_at=9.0)
    state = scale_step(spec, state, burst, ready_pods=1, routed=True, now=10)
    assert state.desired == 10 and state.panic_since == 10
    calm = LoadSample(stable_concurrency=70.0, panic_concurrency=70.0, last_request_at=19.0)
    assert scale_step(spec, state, calm, ready_pods=10, routed=True, now=20).desired == 10  # still panicking
    assert scale_step(spec, state, calm, ready_pods=10, routed=True, now=80).desired == 5  # panic over


def revision(
    name: str, annotations: dict[str, str] | None = None, routing: str = "active"
) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {
                "serving.knative.dev/service": "hello",
                "serving.knative.dev/configuration": "hello",
                "serving.knative.dev/routingState": routing,
            },
            "annotations": annotations or {},
        },
        "spec": {"containers": [{"image": "x:1"}]},
    }


def test_fleet_pods_follow_the_autoscaler_and_cold_start() -> None:
    fleet = Fleet(seed=1, default_ready_delay=2.0, default_cold_start=1.5)
    fleet.sync([revision("hello-00001", {"sandbox.knrollout.dev/cold-start": "3s"})], now=0.0)
    runtime = fleet.get("default", "hello-00001")
    assert runtime is not None
    assert len(runtime.pods) == 1 and not runtime.deployed(1.0) and runtime.deployed(2.0)
    assert runtime.pods[0].name.startswith("hello-00001-deployment-")
    for t in range(2, 62):  # 140 concurrent one-second requests, for a minute
        for _ in range(140):
            fleet.record_request(runtime, float(t), 1.0)
    fleet.autoscale(62.0)
    assert runtime.scaler.desired >= 2
    new_pods = [p for p in runtime.pods if p.created_at == 62.0]
    assert new_pods and all(p.ready_at == 65.0 for p in new_pods)  # the cold start
    for t in range(64, 400, 2):  # idle: down to zero eventually
        fleet.autoscale(float(t))
    assert runtime.pods == [] and runtime.scaler.desired == 0
    fleet.activate(runtime, 400.0)
    assert len(runtime.pods) == 1 and runtime.next_pod_ready(400.0) == 403.0
    fleet.sync([], now=401.0)
    assert fleet.get("default", "hello-00001") is None


def test_crd_checker_reports_undeclared_fields() -> None:
    crd_schemas.require_crds()
    bad = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Route",
        "metadata": {"name": "x"},
        "spec": {"traffic": [{"percent": "ten", "path": "/v2"}]},
    }
    problems = crd_schemas.check(bad)
    assert any("percent" in p for p in problems)
    assert "undeclared field .spec.traffic[0].path" in problems
