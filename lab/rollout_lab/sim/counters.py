"""Per-pod counter series as Prometheus would hold them, and what a query over a window returns.

Each revision runs a few pod slots. Every pod exposes counters: requests, failed requests, and the cumulative
latency buckets (`le`). Counters misbehave as in a cluster: a container restart resets a pod's counters
(the requests it served between its last scrape and the restart are lost), a pod replaced by a new one
starts a new series, and scrapes fail now and then (no sample). Samples become visible one scrape late.

The query side is the real evidence accounting (`rollout.engine.evidence`): per-series increases with reset
handling, summed per revision, rounded. Only the recent scrapes are kept (a ring buffer), enough for any
window the drivers ask about.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from rollout.engine.evidence import latency_histogram, request_counts, sum_increases
from rollout.engine.observations import LatencyHistogram, Measurement, NoData, RequestCounts
from rollout_lab.sim.promql import extrapolated_increase
from rollout_lab.sim.scenarios import KNATIVE_BUCKETS
from rollout_lab.sim.traffic import IntervalTraffic

REQUESTS, FAILURES, FIRST_BUCKET = 0, 1, 2
COUNTERS = 2 + len(KNATIVE_BUCKETS)  # requests, failures, le=edge for every finite edge


@dataclass(frozen=True)
class ScrapeModel:
    interval: float = 15.0
    lag_scrapes: int = 1  # a sample is visible this many scrapes after it was taken
    missed: float = 0.02  # chance that a pod's scrape fails
    reset: float = 0.002  # chance per pod per interval that its container restarts
    replace: float = 0.002  # chance per pod per interval that it is replaced by a new pod
    history: int = 32  # scrapes kept
    # increases as PromQL's increase() computes them: from the samples inside the window, extrapolated to its
    # edges (rollout_lab.sim.promql); False: exact increases from the last sample before the window
    extrapolate: bool = False

    @property
    def lag(self) -> float:
        return self.interval * self.lag_scrapes


class CounterStore:
    """Counters of all runs (runs, arm, pod slot, counter) and the last `history` scrapes of them."""

    def __init__(self, runs: int, pods: int, model: ScrapeModel, rng: np.random.Generator):
        self.model = model
        self.rng = rng
        self.pods = pods
        self.values = np.zeros((runs, 2, pods, COUNTERS))
        self.instance = np.zeros((runs, 2, pods), dtype=np.int64)
        h = model.history
        self.ring_time = np.full(h, -math.inf)
        self.ring_values = np.zeros((h, runs, 2, pods, COUNTERS))
        self.ring_instance = np.zeros((h, runs, 2, pods), dtype=np.int64)
        self.ring_seen = np.zeros((h, runs, 2, pods), dtype=bool)
        self.scrapes = 0
        self.order: list[int] = []  # ring slots in time order
        self.times: list[float] = []

    def advance(self, traffic: IntervalTraffic) -> None:
        """Add one interval's traffic to the counters, with restarts and replacements."""
        inc = np.empty_like(self.values)
        inc[..., REQUESTS] = traffic.requests
        inc[..., FAILURES] = traffic.failures
        inc[..., FIRST_BUCKET:] = np.cumsum(traffic.buckets[..., :-1], axis=-1)
        shape = self.instance.shape
        restart = self.rng.random(shape) < self.model.reset
        replaced = self.rng.random(shape) < self.model.replace
        fresh = restart | replaced
        # A counter that starts over keeps only what the pod served after the restart (a random part).
        after = np.floor(inc * self.rng.random(shape)[..., None])
        self.values = np.where(fresh[..., None], after, self.values + inc)
        self.instance = self.instance + replaced

    def scrape(self, at: float) -> None:
        slot = self.scrapes % self.model.history
        self.ring_time[slot] = at
        self.ring_values[slot] = self.values
        self.ring_instance[slot] = self.instance
        self.ring_seen[slot] = self.rng.random(self.instance.shape) >= self.model.missed
        self.scrapes += 1
        self.order = [int(i) for i in np.argsort(self.ring_time) if math.isfinite(self.ring_time[i])]
        self.times = [float(self.ring_time[i]) for i in self.order]

    def view(self, run: int, cold_seconds: float = 0.0) -> RunView:
        return RunView(self, run, cold_seconds)


class RunView:
    """What one run's controller can read from Prometheus."""

    def __init__(self, store: CounterStore, run: int, cold_seconds: float = 0.0):
        self.store = store
        self.run = run
        # Knative's side, which the simulator plays too: after each weight increase the candidate's new pods
        # take this long to be ready (its status reports fewer ready pods than wanted meanwhile)
        self.cold_seconds = cold_seconds

    def visible_until(self, now: float) -> float:
        return now - self.store.model.lag

    def _series(
        self, arm: int, start: float, end: float, counters: list[int]
    ) -> list[list[list[tuple[float, float]]]]:
        """For each requested counter, the per-series sample lists of one arm with samples up to `end`."""
        s = self.store
        lo = bisect.bisect_left(s.times, start - 6 * s.model.interval)
        hi = bisect.bisect_right(s.times, end)
        slots = s.order[lo:hi]
        times = s.times[lo:hi]
        if times and times[0] > start and s.scrapes > s.model.history:
            raise ValueError("window starts before the kept scrape history")
        values = s.ring_values[slots, self.run, arm][..., counters].tolist()  # (scrapes, pods, counters)
        seen = s.ring_seen[slots, self.run, arm].tolist()
        inst = s.ring_instance[slots, self.run, arm].tolist()
        first_new = bisect.bisect_right(times, start)
        out: list[list[list[tuple[float, float]]]] = [[] for _ in counters]
        for pod in range(s.pods):
            series: dict[int, list[int]] = {}
            for j in range(len(slots)):
                if seen[j][pod]:
                    series.setdefault(inst[j][pod], []).append(j)
            for rows in series.values():
                # Only the last sample at or before `start` matters (it is the base); then all later ones.
                keep = [j for j in rows if j >= first_new]
                base = [j for j in rows if j < first_new][-1:]
                for c in range(len(counters)):
                    out[c].append([(times[j], values[j][pod][c]) for j in base + keep])
        return out

    def _increase(self, series: list[list[tuple[float, float]]], start: float, end: float) -> float | None:
        if self.store.model.extrapolate:
            return sum_increases(series, start, end, extrapolated_increase)
        return sum_increases(series, start, end)

    def requests(self, arm: int, start: float, end: float) -> Measurement:
        series = self._series(arm, start, end, [REQUESTS, FAILURES])
        n = self._increase(series[0], start, end)
        f = self._increase(series[1], start, end)
        if n is None or f is None:
            return NoData("no series")
        return request_counts(n, f)

    def histogram(
        self, arm: int, start: float, end: float, edges: tuple[float, ...] | None = None
    ) -> Measurement:
        """The latency histogram of one arm; with `edges`, only those buckets (as a query filtered on `le`)."""
        wanted = [(i, e) for i, e in enumerate(KNATIVE_BUCKETS) if edges is None or e in edges]
        counters = [REQUESTS] + [FIRST_BUCKET + i for i, _ in wanted]
        series = self._series(arm, start, end, counters)
        total = self._increase(series[0], start, end)
        if total is None:
            return NoData("no series")
        buckets = {
            edge: self._increase(series[1 + j], start, end) or 0.0 for j, (_, edge) in enumerate(wanted)
        }
        buckets[math.inf] = total
        return latency_histogram(buckets)


def expected_histogram(
    probabilities: np.ndarray, requests: int, rng: np.random.Generator
) -> LatencyHistogram:
    """A histogram of `requests` draws (e.g. stable's last hour before the rollout)."""
    counts = rng.multinomial(requests, probabilities)
    cumulative = np.cumsum(counts)
    return LatencyHistogram(
        edges=KNATIVE_BUCKETS, cumulative=tuple(int(x) for x in cumulative[:-1]), total=int(cumulative[-1])
    )


def baseline_counts(requests: int, error: float, rng: np.random.Generator) -> RequestCounts:
    return RequestCounts(requests=requests, failures=int(rng.binomial(requests, error)))
