"""The simulated data plane of the sandbox: the pods of each revision, its load and its autoscaler state.

A real cluster keeps this in Deployments, Pods and PodAutoscalers, which the sandbox does not serve; here it
is in-process state shared by the Knative simulator (which scales pods and reports replica counts in
Revision status) and the traffic generator (which sends requests to pods and reports the load back).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout.api.durations import DurationError, parse_duration
from rollout_lab.sandbox.knative import names
from rollout_lab.sandbox.knative.autoscaler import (
    LoadSample,
    ScalerState,
    ScalingSpec,
    activator_in_path,
    initial_state,
    scale_step,
    scaling_spec,
)

RevisionKey = tuple[str, str]  # (namespace, name)
ACTIVATOR_POD = "activator-6d5c8b7f9d-k2p4x"
FAILURE_MODES = ("ImagePullBackOff", "ContainerMissing", "CrashLoopBackOff")


def duration_annotation(annotations: Mapping[str, str], key: str, default: float) -> float:
    raw = annotations.get(key)
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except DurationError:
        return default


@dataclass
class Pod:
    name: str
    created_at: float
    ready_at: float

    def ready(self, now: float) -> bool:
        return now >= self.ready_at


class LoadWindow:
    """Concurrency bookkeeping: busy request-seconds per one-second bucket (Little's law gives the average
    concurrency over any window)."""

    def __init__(self, horizon: float = 600.0) -> None:
        self._busy: dict[int, float] = {}
        self._horizon = horizon

    def add(self, start: float, duration: float) -> None:
        end = start + max(duration, 0.0)
        second = math.floor(start)
        while second < end:
            overlap = min(end, second + 1) - max(start, second)
            if overlap > 0:
                self._busy[second] = self._busy.get(second, 0.0) + overlap
            second += 1

    def average(self, now: float, window: float) -> float:
        lo = now - window
        first, end = math.ceil(lo), math.ceil(now)
        if end - first <= len(self._busy):
            total = sum(self._busy.get(second, 0.0) for second in range(first, end))
        else:
            total = sum(busy for second, busy in self._busy.items() if lo <= second < now)
        return total / window if window > 0 else 0.0

    def prune(self, now: float) -> None:
        cutoff = now - self._horizon
        for second in [s for s in self._busy if s < cutoff]:
            del self._busy[second]


@dataclass
class RevisionRuntime:
    namespace: str
    name: str
    service: str
    configuration: str
    image: str
    created_at: float
    ready_delay: float
    failure: str | None
    spec: ScalingSpec
    cold_start: float
    scaler: ScalerState
    pods: list[Pod] = field(default_factory=list)
    load: LoadWindow = field(default_factory=LoadWindow)
    routed: bool = False
    last_request_at: float | None = None
    activating: bool = False
    activator_in_path: bool = True  # decided on each autoscaler tick, as Knative flips its SKS mode
    inflight: list[float] = field(default_factory=list)  # heap of completion times
    buffered: list[float] = field(default_factory=list)  # heap of release times in the activator

    @property
    def key(self) -> RevisionKey:
        return (self.namespace, self.name)

    @property
    def ready_at(self) -> float:
        return self.created_at + self.ready_delay

    def deployed(self, now: float) -> bool:
        """The revision reached its initial scale (Knative marks it Ready)."""
        return self.failure is None and now >= self.ready_at

    def failed(self, now: float) -> bool:
        return self.failure is not None and now >= self.ready_at

    def ready_pods(self, now: float) -> list[Pod]:
        if self.failure is not None:
            return []
        return [pod for pod in self.pods if pod.ready(now)]

    def next_pod_ready(self, now: float) -> float | None:
        if self.failure is not None:
            return None
        waiting = [pod.ready_at for pod in self.pods if not pod.ready(now)]
        return min(waiting) if waiting else None


class Fleet:
    """All revision runtimes of the sandbox, keyed by (namespace, name)."""

    def __init__(
        self, *, seed: int = 0, default_ready_delay: float = 2.0, default_cold_start: float = 1.5
    ) -> None:
        self.runtimes: dict[RevisionKey, RevisionRuntime] = {}
        self._rng = random.Random(seed)
        self.default_ready_delay = default_ready_delay
        self.default_cold_start = default_cold_start
        self.touched: set[RevisionKey] = set()  # runtimes whose Revision status may have changed
        self.on_activate: Callable[[], None] | None = None  # the activator pokes the autoscaler
        self._timers: list[tuple[float, RevisionKey]] = []  # (moment a revision or pod becomes ready, key)

    def get(self, namespace: str, name: str) -> RevisionRuntime | None:
        return self.runtimes.get((namespace, name))

    def sync(self, revisions: Iterable[Mapping[str, Any]], now: float) -> None:
        """Track exactly these Revision objects: add new ones, drop deleted ones, follow annotation and
        routingState changes (annotations on a Revision are mutable)."""
        seen = {self.track(revision, now) for revision in revisions}
        for key in [k for k in self.runtimes if k not in seen]:
            self.forget(key)

    def track(self, revision: Mapping[str, Any], now: float) -> RevisionKey:
        """Follow one Revision object (created or changed)."""
        meta = revision.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        spec = revision.get("spec") or {}
        scaling = scaling_spec(annotations, int(spec.get("containerConcurrency") or 0))
        runtime = self.runtimes.get(key)
        if runtime is None:
            runtime = self._new_runtime(key, revision, scaling, now)
            self.runtimes[key] = runtime
        runtime.spec = scaling
        runtime.cold_start = duration_annotation(
            annotations, names.SANDBOX_PREFIX + "cold-start", self.default_cold_start
        )
        runtime.routed = labels.get(names.ROUTING_STATE_LABEL) == names.ROUTING_ACTIVE
        return key

    def forget(self, key: RevisionKey) -> None:
        """The Revision is gone."""
        self.runtimes.pop(key, None)
        self.touched.discard(key)

    def _new_runtime(
        self, key: RevisionKey, revision: Mapping[str, Any], scaling: ScalingSpec, now: float
    ) -> RevisionRuntime:
        meta = revision.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        containers = (revision.get("spec") or {}).get("containers") or [{}]
        failure = annotations.get(names.FAIL_ANNOTATION) or None
        runtime = RevisionRuntime(
            namespace=key[0],
            name=key[1],
            service=str(labels.get(names.SERVICE_LABEL, "")),
            configuration=str(labels.get(names.CONFIGURATION_LABEL, "")),
            image=str(containers[0].get("image", "")),
            created_at=now,  # first seen: the simulator creates revisions and syncs at once
            ready_delay=duration_annotation(
                annotations, names.READY_DELAY_ANNOTATION, self.default_ready_delay
            ),
            failure=failure,
            spec=scaling,
            cold_start=self.default_cold_start,
            scaler=initial_state(scaling),
        )
        heapq.heappush(self._timers, (runtime.ready_at, key))
        self._resize(runtime, runtime.scaler.desired, now)
        return runtime

    def pod_name(self, revision: str) -> str:
        template_hash = hashlib.sha256(revision.encode()).hexdigest()[:10]
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        suffix = "".join(self._rng.choice(alphabet) for _ in range(5))
        return f"{revision}-deployment-{template_hash}-{suffix}"

    def _resize(self, runtime: RevisionRuntime, desired: int, now: float) -> None:
        pods = runtime.pods
        if len(pods) != desired:
            self.touched.add(runtime.key)
        if len(pods) < desired:
            ready_at = max(now + runtime.cold_start, runtime.ready_at)
            for _ in range(desired - len(pods)):
                pods.append(Pod(self.pod_name(runtime.name), now, ready_at))
            heapq.heappush(self._timers, (ready_at, runtime.key))
        elif len(pods) > desired:
            # like a ReplicaSet: not-ready pods go first, then the newest
            pods.sort(key=lambda p: (p.ready(now), -p.created_at))
            del pods[: len(pods) - desired]
            pods.sort(key=lambda p: p.created_at)

    def activate(self, runtime: RevisionRuntime, now: float) -> None:
        """A request reached a revision with no ready pod: the activator asks for pods right away."""
        if not runtime.activating:
            runtime.activating = True
            self.touched.add(runtime.key)
            if self.on_activate is not None:
                self.on_activate()
        if not runtime.pods:
            want = max(runtime.spec.activation_scale, 1)
            runtime.scaler = ScalerState(
                desired=want,
                reached_initial=runtime.scaler.reached_initial,
                panic_since=runtime.scaler.panic_since,
                recent=runtime.scaler.recent,
            )
            self._resize(runtime, want, now)

    def autoscale(self, now: float) -> None:
        """One autoscaler tick for every revision."""
        for runtime in self.runtimes.values():
            runtime.load.prune(now)
            if runtime.failure is not None:
                continue
            sample = LoadSample(
                stable_concurrency=runtime.load.average(now, runtime.spec.window),
                panic_concurrency=runtime.load.average(now, runtime.spec.panic_window),
                # a new revision counts as busy from the moment it is up: it is not scaled away at once
                last_request_at=max(runtime.last_request_at or runtime.ready_at, runtime.ready_at),
            )
            ready = len(runtime.ready_pods(now))
            before = (runtime.scaler.desired, runtime.activating)
            runtime.scaler = scale_step(
                runtime.spec, runtime.scaler, sample, ready_pods=ready, routed=runtime.routed, now=now,
                activating=runtime.activating and ready == 0,
            )  # fmt: skip
            if ready > 0:
                runtime.activating = False
            runtime.activator_in_path = activator_in_path(
                runtime.spec, ready_pods=ready, panic_concurrency=sample.panic_concurrency
            )
            if (runtime.scaler.desired, runtime.activating) != before:
                self.touched.add(runtime.key)
            self._resize(runtime, runtime.scaler.desired, now)

    def next_change(self) -> float | None:
        """The earliest moment a revision or a pod becomes ready that `due` has not reported yet (for the
        simulator's timers; may be in the past)."""
        while self._timers and self._timers[0][1] not in self.runtimes:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def due(self, now: float) -> set[RevisionKey]:
        """Revisions of which the revision itself or a pod became ready since the last call, plus those
        `touched` (scaled, activated); both are then forgotten."""
        keys, self.touched = self.touched, set()
        while self._timers and self._timers[0][0] <= now:
            _, key = heapq.heappop(self._timers)
            if key in self.runtimes:
                keys.add(key)
        return keys

    def record_request(self, runtime: RevisionRuntime, arrival: float, duration: float) -> None:
        runtime.last_request_at = max(runtime.last_request_at or arrival, arrival)
        runtime.load.add(arrival, duration)
        heapq.heappush(runtime.inflight, arrival + duration)

    @staticmethod
    def inflight(runtime: RevisionRuntime, now: float) -> int:
        while runtime.inflight and runtime.inflight[0] <= now:
            heapq.heappop(runtime.inflight)
        return len(runtime.inflight)
