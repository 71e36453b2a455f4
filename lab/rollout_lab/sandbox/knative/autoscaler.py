"""A KPA-like autoscaler (Knative's default Pod Autoscaler), as a pure step function.

Model (Knative defaults, overridable by `autoscaling.knative.dev/*` annotations on the revision template):
- desired pods = ceil(average concurrency over the stable window / (target x utilization));
- panic mode when the panic-window average asks for >= panic-threshold x the ready pods: then the scale
  never goes down until a stable window passes without panic;
- scale-down is limited to halving per step, and delayed by `scale-down-delay`;
- scale to zero once no request arrived for the stable window plus the scale-to-zero grace period (only
  when min-scale is 0), from zero at least `activation-scale` pods;
- a new revision starts with `initial-scale` pods and keeps at least that many until it first had them;
- min-scale applies only to revisions a route references (routingState active), max-scale always.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from rollout.api.durations import DurationError, parse_duration
from rollout_lab.sandbox.knative.names import AUTOSCALING_PREFIX

# legacy camelCase spellings Knative still reads
_LEGACY = {
    "min-scale": "minScale",
    "max-scale": "maxScale",
    "initial-scale": "initialScale",
    "target-burst-capacity": "targetBurstCapacity",
    "panic-threshold-percentage": "panicThresholdPercentage",
    "panic-window-percentage": "panicWindowPercentage",
    "target-utilization-percentage": "targetUtilizationPercentage",
}


@dataclass(frozen=True)
class ScalingSpec:
    target: float = 100.0
    utilization: float = 0.7
    min_scale: int = 0
    max_scale: int = 0  # 0: unlimited
    initial_scale: int = 1
    activation_scale: int = 1
    window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    scale_down_delay: float = 0.0
    scale_to_zero_grace: float = 30.0
    container_concurrency: int = 0
    target_burst_capacity: float = 211.0  # -1: the activator always stays in the request path

    @property
    def per_pod(self) -> float:
        return max(self.target * self.utilization, 0.01)

    @property
    def panic_window(self) -> float:
        return max(self.window * self.panic_window_percentage / 100.0, 1.0)


def _annotation(annotations: Mapping[str, str], name: str) -> str | None:
    value = annotations.get(AUTOSCALING_PREFIX + name)
    if value is None and name in _LEGACY:
        value = annotations.get(AUTOSCALING_PREFIX + _LEGACY[name])
    return value


def _percent(value: str) -> float:
    return float(value) / 100.0


def scaling_spec(annotations: Mapping[str, str] | None, container_concurrency: int = 0) -> ScalingSpec:
    """The scaling parameters of a revision (unparseable annotations keep the default, as Knative's
    webhook would have rejected them)."""
    annotations = annotations or {}
    spec = ScalingSpec(container_concurrency=max(container_concurrency, 0))
    if container_concurrency > 0:
        spec = replace(spec, target=float(container_concurrency))
    numbers: dict[str, tuple[str, Callable[[str], float]]] = {
        "target": ("target", float),
        "min-scale": ("min_scale", int),
        "max-scale": ("max_scale", int),
        "initial-scale": ("initial_scale", int),
        "activation-scale": ("activation_scale", int),
        "target-utilization-percentage": ("utilization", _percent),
        "panic-window-percentage": ("panic_window_percentage", float),
        "panic-threshold-percentage": ("panic_threshold_percentage", float),
        "target-burst-capacity": ("target_burst_capacity", float),
    }
    changes: dict[str, object] = {}
    for name, (attribute, convert) in numbers.items():
        raw = _annotation(annotations, name)
        if raw is None:
            continue
        try:
            changes[attribute] = convert(raw)
        except ValueError:
            continue
    durations = {"window": "window", "scale-down-delay": "scale_down_delay"}
    for name, attribute in durations.items():
        raw = _annotation(annotations, name)
        if raw is None:
            continue
        try:
            changes[attribute] = parse_duration(raw)
        except DurationError:
            continue
    spec = replace(spec, **changes)  # type: ignore[arg-type]
    if container_concurrency > 0:
        spec = replace(spec, target=min(spec.target, float(container_concurrency)))
    return spec


def activator_in_path(spec: ScalingSpec, *, ready_pods: int, panic_concurrency: float) -> bool:
    """Whether the activator stays in the request path (Knative's excess burst capacity < 0): always at
    zero pods, always with target-burst-capacity -1, never with 0; else when the pods' capacity minus the
    current load cannot absorb a burst of target-burst-capacity requests."""
    if ready_pods == 0 or spec.target_burst_capacity < 0:
        return True
    if spec.target_burst_capacity == 0:
        return False
    per_pod_capacity = float(spec.container_concurrency) if spec.container_concurrency > 0 else spec.target
    excess = ready_pods * per_pod_capacity - panic_concurrency - spec.target_burst_capacity
    return excess < 0


@dataclass(frozen=True)
class ScalerState:
    desired: int
    reached_initial: bool = False
    panic_since: float | None = None
    recent: tuple[tuple[float, int], ...] = ()  # (time, desired) within scale-down-delay


@dataclass(frozen=True)
class LoadSample:
    stable_concurrency: float  # average concurrency over the stable window
    panic_concurrency: float  # average concurrency over the panic window
    last_request_at: float | None


def initial_state(spec: ScalingSpec) -> ScalerState:
    return ScalerState(desired=max(spec.initial_scale, 0))


def scale_step(
    spec: ScalingSpec,
    state: ScalerState,
    load: LoadSample,
    *,
    ready_pods: int,
    routed: bool,
    now: float,
    activating: bool = False,
) -> ScalerState:
    """One autoscaler tick: the new state, whose `desired` is the pod count to run.

    `activating` means a request is waiting in the activator for a revision at zero pods."""
    per_pod = spec.per_pod
    stable = math.ceil(load.stable_concurrency / per_pod - 1e-9) if load.stable_concurrency > 0 else 0
    panic_want = math.ceil(load.panic_concurrency / per_pod - 1e-9) if load.panic_concurrency > 0 else 0
    reached = state.reached_initial or ready_pods >= spec.initial_scale
    panic_since = state.panic_since
    over_panic = ready_pods > 0 and panic_want / ready_pods >= spec.panic_threshold_percentage / 100.0
    if over_panic:
        panic_since = now
    elif panic_since is not None and now - panic_since >= spec.window:
        panic_since = None
    if panic_since is not None:
        desired = max(panic_want, stable, state.desired)
    else:
        desired = stable
        if ready_pods > 0:
            desired = max(desired, math.floor(ready_pods / 2))  # max scale-down rate 2x per tick
    idle = (
        load.last_request_at is None or now - load.last_request_at >= spec.window + spec.scale_to_zero_grace
    )
    if desired == 0 and not idle:
        desired = 1
    if activating:
        desired = max(desired, spec.activation_scale, 1)
    if desired > 0 and state.desired == 0:
        desired = max(desired, spec.activation_scale)
    if not reached:
        desired = max(desired, spec.initial_scale)
    recent = (*((t, d) for t, d in state.recent if now - t < spec.scale_down_delay), (now, desired))
    if spec.scale_down_delay > 0:
        desired = max(d for _, d in recent)
    if routed and spec.min_scale > 0:
        desired = max(desired, spec.min_scale)
    if spec.max_scale > 0:
        desired = min(desired, spec.max_scale)
    return ScalerState(desired=desired, reached_initial=reached, panic_since=panic_since, recent=recent)
