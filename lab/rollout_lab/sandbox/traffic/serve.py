"""How one request fares in the simulated data plane (activator, queue-proxy, user container).

- Revision failed: the activator answers 503 at once.
- No ready pod (scaled to zero, or the first pod is still starting): the activator buffers the request and
  asks for pods; it waits until the first pod is ready (the cold start), or gets 503 when the activator
  already buffers `activator-capacity` requests for that revision.
- Pods ready: the activator stays in the path while the revision's excess burst capacity is negative
  (few pods for `target-burst-capacity`, default 211: the usual case for small revisions), so those requests
  are counted by the activator AND the queue-proxy; with more capacity they go to the pods directly.
- `containerConcurrency` > 0: requests beyond pods x containerConcurrency queue (their wait is added), and
  beyond 10 x that they get 503 from the activator (when in the path) or from the queue-proxy.
- The app answers `error-code` with probability `error-rate`, after a lognormal latency (median, sigma),
  plus `latency-tail` for a `latency-tail-share` of requests.
"""

from __future__ import annotations

import heapq
import math
import random

from rollout_lab.sandbox.knative.fleet import Fleet, RevisionRuntime
from rollout_lab.sandbox.traffic.behaviour import RevisionBehaviour
from rollout_lab.sandbox.traffic.exporters import Outcome

ACTIVATOR_OVERHEAD = 0.001  # seconds the activator takes to answer or forward
QUEUE_DEPTH_FACTOR = 10  # queue-proxy's breaker queue: 10 x containerConcurrency per pod


def app_answer(behaviour: RevisionBehaviour, rng: random.Random) -> tuple[int, float]:
    """(status code, latency in seconds) of the user container."""
    latency = behaviour.latency_median * math.exp(behaviour.latency_sigma * rng.gauss(0.0, 1.0))
    if behaviour.tail_share > 0 and rng.random() < behaviour.tail_share:
        latency += behaviour.tail_latency
    code = behaviour.error_code if rng.random() < behaviour.error_rate else 200
    return code, latency


def _outcome(runtime: RevisionRuntime, **fields: object) -> Outcome:
    return Outcome(
        namespace=runtime.namespace,
        service=runtime.service,
        configuration=runtime.configuration,
        revision=runtime.name,
        **fields,  # type: ignore[arg-type]
    )


def serve(
    fleet: Fleet,
    runtime: RevisionRuntime,
    behaviour: RevisionBehaviour,
    arrival: float,
    rng: random.Random,
) -> Outcome:
    if runtime.failure is not None:
        return _activator_rejects(runtime)
    # Routes list only Ready revisions; an arrival stamped (within the generator's tick) before the
    # revision came up reaches it when the route is programmed, not earlier.
    arrival = max(arrival, runtime.ready_at)
    ready = runtime.ready_pods(arrival)
    if not ready:
        return _cold(fleet, runtime, behaviour, arrival, rng)
    pod = ready[rng.randrange(len(ready))]
    in_flight = Fleet.inflight(runtime, arrival)
    concurrency = runtime.spec.container_concurrency
    proxied = runtime.activator_in_path
    hop = ACTIVATOR_OVERHEAD if proxied else 0.0
    wait = 0.0
    if concurrency > 0:
        capacity = len(ready) * concurrency
        if in_flight >= capacity * (1 + QUEUE_DEPTH_FACTOR):
            fleet.record_request(runtime, arrival, ACTIVATOR_OVERHEAD)
            if proxied:  # the activator's breaker for the revision is full
                return _activator_rejects(runtime)
            return _outcome(
                runtime, code=503, pod=pod.name, app_code=None, app_latency=0.0, proxy_latency=ACTIVATOR_OVERHEAD,
                via_activator=False, activator_latency=0.0, total_latency=ACTIVATOR_OVERHEAD,
            )  # fmt: skip
        if in_flight >= capacity:
            wait = (in_flight - capacity + 1) / capacity * behaviour.latency_median
    code, latency = app_answer(behaviour, rng)
    fleet.record_request(runtime, arrival, wait + latency)
    return _outcome(
        runtime, code=code, pod=pod.name, app_code=code, app_latency=latency, proxy_latency=wait + latency,
        via_activator=proxied, activator_latency=wait + latency + hop, total_latency=wait + latency + hop,
    )  # fmt: skip


def _activator_rejects(runtime: RevisionRuntime) -> Outcome:
    return _outcome(
        runtime, code=503, pod=None, app_code=None, app_latency=0.0, proxy_latency=0.0,
        via_activator=True, activator_latency=ACTIVATOR_OVERHEAD, total_latency=ACTIVATOR_OVERHEAD,
    )  # fmt: skip


def _cold(
    fleet: Fleet, runtime: RevisionRuntime, behaviour: RevisionBehaviour, arrival: float, rng: random.Random
) -> Outcome:
    fleet.activate(runtime, arrival)
    first_ready = runtime.next_pod_ready(arrival)
    while runtime.buffered and runtime.buffered[0] <= arrival:
        heapq.heappop(runtime.buffered)
    if first_ready is None or len(runtime.buffered) >= behaviour.activator_capacity:
        runtime.last_request_at = arrival
        return _activator_rejects(runtime)
    heapq.heappush(runtime.buffered, first_ready)
    wait = first_ready - arrival
    pods = [p for p in runtime.pods if p.ready(first_ready)]
    pod = pods[rng.randrange(len(pods))]
    code, latency = app_answer(behaviour, rng)
    fleet.record_request(runtime, arrival, wait + latency)
    return _outcome(
        runtime, code=code, pod=pod.name, app_code=code, app_latency=latency, proxy_latency=latency,
        via_activator=True, activator_latency=wait + latency + ACTIVATOR_OVERHEAD,
        total_latency=wait + latency + ACTIVATOR_OVERHEAD,
    )  # fmt: skip
