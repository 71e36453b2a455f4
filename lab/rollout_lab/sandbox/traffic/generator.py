"""The traffic generator: open-loop Poisson load on every Knative Service, split as Knative serves it.

Each Service gets requests at `rps` (its `sandbox.knrollout.dev/rps` annotation, else the default), varied
by a sine over `diurnal-period` (arrivals by thinning a Poisson process, so the process stays exact). A
request carries the `Knative-Serving-Tag` header with the shares of `tag-traffic`; it reaches the revision
the Route's CURRENT status.traffic gives it (the split Knative's data plane serves: while a referenced
revision is not Ready, that is still the old one), and fares as `serve.py` says. Every outcome is recorded
by the configured dialect exporters, which `/metrics` renders.

`step(start, end)` is pure simulation on the injected clock's timeline; `run()` calls it in real or
virtual time.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from rollout.knative.dialects import Dialect
from rollout.knative.routing import pick_revision, served_traffic
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.clock import Clock
from rollout_lab.sandbox.knative.fleet import Fleet
from rollout_lab.sandbox.readonly import list_readonly
from rollout_lab.sandbox.store_api import ObjectStore
from rollout_lab.sandbox.traffic.behaviour import (
    RevisionBehaviour,
    ServiceLoad,
    revision_behaviour,
    service_load,
)
from rollout_lab.sandbox.traffic.exporters import Exporter, Outcome, make_exporter
from rollout_lab.sandbox.traffic.serve import serve

log = structlog.get_logger(__name__)
DEFAULT_BEHAVIOUR = RevisionBehaviour()


@dataclass(frozen=True)
class GeneratorSettings:
    default_rps: float = 5.0
    diurnal_amplitude: float = 0.0
    dialects: tuple[Dialect, ...] = ("knative-classic",)
    tag_header_routing: bool = True  # Knative's config-features `tag-header-based-routing: Enabled`
    seed: int | None = None
    tick: float = 0.25  # seconds of simulated time per step in run()


def rate_at(load: ServiceLoad, t: float) -> float:
    """Requests per second at time t (diurnal sine around the mean)."""
    return max(
        0.0, load.rps * (1.0 + load.diurnal_amplitude * math.sin(2 * math.pi * t / load.diurnal_period))
    )


def arrivals(load: ServiceLoad, start: float, end: float, rng: random.Random) -> list[float]:
    """Arrival times in [start, end) of a (possibly time-varying) Poisson process, by thinning."""
    peak = load.rps * (1.0 + load.diurnal_amplitude)
    if peak <= 0 or end <= start:
        return []
    times: list[float] = []
    t = start
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            return times
        if load.diurnal_amplitude == 0 or rng.random() * peak < rate_at(load, t):
            times.append(t)


def pick_tag(tag_traffic: Mapping[str, float], u: float) -> str | None:
    cumulative = 0.0
    for tag, share in tag_traffic.items():
        cumulative += share
        if u < cumulative:
            return tag
    return None


class TrafficGenerator:
    def __init__(self, store: ObjectStore, fleet: Fleet, clock: Clock, settings: GeneratorSettings) -> None:
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.settings = settings
        self.exporters: list[Exporter] = [make_exporter(dialect) for dialect in settings.dialects]
        self.rng = random.Random(settings.seed)
        self.requests = 0
        self._behaviours: dict[tuple[str, str, str], RevisionBehaviour] = {}
        self._reported: set[str] = set()

    def _report(self, where: str, problems: Sequence[str]) -> None:
        for problem in problems:
            if (where + problem) not in self._reported:
                self._reported.add(where + problem)
                log.warning("sandbox.traffic.bad_annotation", object=where, problem=problem)

    def _behaviours_now(self) -> dict[tuple[str, str], RevisionBehaviour]:
        """Each revision's behaviour (parsed once per version of the revision)."""
        revisions = list_readonly(self.store, kinds.REVISIONS)
        current: dict[tuple[str, str], RevisionBehaviour] = {}
        for obj in revisions:
            meta = obj.get("metadata") or {}
            namespace, name = str(meta.get("namespace")), str(meta.get("name"))
            key = (namespace, name, str(meta.get("resourceVersion", "")))
            cached = self._behaviours.get(key)
            if cached is None:
                cached, problems = revision_behaviour(meta.get("annotations"))
                self._report(f"revision {namespace}/{name}", problems)
                self._behaviours[key] = cached
            current[(namespace, name)] = cached
        return current

    def step(self, start: float, end: float) -> int:
        """Send the requests arriving in [start, end); returns how many were sent."""
        services = list_readonly(self.store, kinds.KSERVICES)
        routes = list_readonly(self.store, kinds.ROUTES)
        by_key = {(str(r["metadata"]["namespace"]), str(r["metadata"]["name"])): r for r in routes}
        behaviours = functools.cache(self._behaviours_now)  # read only when some Service sends a request
        sent = 0
        for service in services:
            meta = service.get("metadata") or {}
            route = by_key.get((str(meta.get("namespace")), str(meta.get("name"))))
            sent += self._step_service(service, route, behaviours, start, end)
        alive = {pod.name for runtime in self.fleet.runtimes.values() for pod in runtime.pods}
        for exporter in self.exporters:
            exporter.forget_pods(alive)
        if len(self._behaviours) > 10_000:
            self._behaviours.clear()
        self.requests += sent
        return sent

    def _step_service(
        self,
        service: Mapping[str, Any],
        route: Mapping[str, Any] | None,
        behaviours: Callable[[], Mapping[tuple[str, str], RevisionBehaviour]],
        start: float,
        end: float,
    ) -> int:
        meta = service.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        traffic = ((route or {}).get("status") or {}).get("traffic")
        if not traffic:
            return 0
        load, problems = service_load(
            meta.get("annotations"),
            default_rps=self.settings.default_rps,
            default_amplitude=self.settings.diurnal_amplitude,
        )
        self._report(f"service {namespace}/{name}", problems)
        served = served_traffic(traffic)
        count = 0
        for arrival in arrivals(load, start, end, self.rng):
            tag = pick_tag(load.tag_traffic, self.rng.random()) if load.tag_traffic else None
            revision = pick_revision(
                served, u=self.rng.random(), tag=tag, tag_header_routing=self.settings.tag_header_routing
            )
            runtime = self.fleet.get(namespace, revision) if revision else None
            if runtime is None:
                continue
            behaviour = behaviours().get(runtime.key, DEFAULT_BEHAVIOUR)
            self._record(serve(self.fleet, runtime, behaviour, arrival, self.rng))
            count += 1
        return count

    def _record(self, outcome: Outcome) -> None:
        for exporter in self.exporters:
            exporter.record(outcome)

    def render_metrics(self) -> str:
        return "".join(exporter.registry.render() for exporter in self.exporters)

    async def run(self) -> None:
        """Generate traffic forever, one tick of the clock at a time."""
        last = self.clock.now()
        while True:
            await self.clock.sleep(self.settings.tick)
            now = self.clock.now()
            try:
                self.step(last, now)
            except Exception:  # one bad object must not stop the generator
                log.exception("sandbox.traffic.step_failed")
            last = now
