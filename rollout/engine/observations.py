"""What the decision engine is told about the world at one tick. Plain frozen values, no I/O.

A measurement is a value, no data, or an error — never an exception. Adapters (Prometheus, the simulator)
produce these; judges and the state machine consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RequestCounts:
    """Requests and failed requests (5xx, activator errors included) of one revision over one window.
    Integers: per-series counter increases summed, then rounded."""

    requests: int
    failures: int

    @property
    def rate(self) -> float | None:
        return self.failures / self.requests if self.requests > 0 else None


@dataclass(frozen=True)
class LatencyHistogram:
    """Latency of one revision over one window, as cumulative bucket counts (Prometheus `le` semantics).
    `edges` are upper bounds in seconds, ascending; `cumulative[i]` counts requests <= edges[i];
    `total` counts all requests (the +Inf bucket)."""

    edges: tuple[float, ...]
    cumulative: tuple[int, ...]
    total: int

    def slow(self, threshold: float) -> int:
        """Requests slower than `threshold` (which should be one of the edges)."""
        below = 0
        for edge, count in zip(self.edges, self.cumulative, strict=True):
            if edge <= threshold + 1e-12:
                below = count
            else:
                break
        return max(self.total - below, 0)

    def quantile(self, q: float) -> float | None:
        """Linear interpolation inside the bucket, like PromQL's histogram_quantile."""
        if self.total <= 0:
            return None
        rank = q * self.total
        prev_edge, prev_count = 0.0, 0
        for edge, count in zip(self.edges, self.cumulative, strict=True):
            if count >= rank:
                if count == prev_count:
                    return edge
                return prev_edge + (edge - prev_edge) * (rank - prev_count) / (count - prev_count)
            prev_edge, prev_count = edge, count
        return self.edges[-1] if self.edges else None


@dataclass(frozen=True)
class Scalar:
    """One number from a custom query."""

    value: float


@dataclass(frozen=True)
class NoData:
    """The source answered, with nothing for this revision (no traffic yet, scaled to zero, no series)."""

    reason: str = "no data"


@dataclass(frozen=True)
class MeasurementError:
    """The source could not answer (timeout, HTTP error, bad query)."""

    message: str


Measurement = RequestCounts | LatencyHistogram | Scalar | NoData | MeasurementError


@dataclass(frozen=True)
class MetricObservation:
    """One policy metric measured for both revisions over the same window [start, end)."""

    metric: str
    start: datetime
    end: datetime
    canary: Measurement
    stable: Measurement


MISSING_REASON = "RevisionMissing"  # RevisionState.reason of a revision the cluster does not have (yet)


@dataclass(frozen=True)
class RevisionState:
    """What Knative says about the candidate revision."""

    name: str
    ready: bool | None  # None: Ready=Unknown (still deploying)
    reason: str = ""
    message: str = ""
    pods: int | None = None  # ready pods (status.actualReplicas); None: not reported
    wanted_pods: int | None = None  # what its autoscaler wants (status.desiredReplicas); None: not reported
    max_pods: int | None = None  # its max-scale; None: unlimited

    @property
    def short(self) -> bool:
        """Fewer pods are ready than Knative's autoscaler wants: new pods are starting (cold start)."""
        return self.pods is not None and self.wanted_pods is not None and self.pods < self.wanted_pods


@dataclass(frozen=True)
class ObservedTraffic:
    """The split Knative serves (Service/Route status.traffic) and whether it is Ready."""

    percents: dict[str, int] = field(default_factory=dict)  # revision name -> percent
    tags: dict[str, str] = field(default_factory=dict)  # tag -> revision name
    ready: bool = False
    # The routing reports a failure (RoutesReady/Ready False for the current generation), as opposed to still
    # reconciling the last write (Unknown, or an older observedGeneration), which is the normal state after
    # every traffic write and not worth a status write of its own.
    failed: bool = False
    # When this split was first seen served (the controller: the informer event that showed it), which may be
    # earlier than the decision that reads it; None: not known, the decision's `now` counts.
    since: datetime | None = None
