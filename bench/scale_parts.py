"""The analysis path of bench/scale.py in parts: for every step a measured window decided, from the window's
end to (a) the controller querying it (its settle wait, configured: Prometheus scrapes every second here, so
the window's newest sample is up to a second old then), (b) its batched queries answered (the controller's
knrollout_analysis_answered_seconds), (c) the decision recorded (the Rollout status write that names the next
weight, as the sandbox committed it), (d) the traffic written and (e) served. Prometheus' own CPU and query
latency come from its /metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bench.scale_probe import histogram_quantile, quantile


class Served(Protocol):
    writes: dict[int, float]
    served: dict[int, float]


@dataclass
class Decisions:
    """(service, weight decided) -> (the deciding window's end, the status write committed), in loop time."""

    at: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)

    def listener(self, clock: Callable[[], float], wall_offset: float) -> Callable[[Any, Any], None]:
        def on_rollout(rt: Any, entry: Any) -> None:
            obj = entry.obj or {}
            status = obj.get("status") or {}
            target = (obj.get("spec") or {}).get("target", {}).get("name")
            window = status.get("lastAnalysisAt")
            if not target or not window or "canaryWeight" not in status:
                return
            key = (str(target), int(status.get("canaryWeight") or 0))
            if key not in self.at:
                end = datetime.fromisoformat(str(window).replace("Z", "+00:00")).timestamp() - wall_offset
                self.at[key] = (end, clock())

        return on_rollout

    def parts(self, timelines: Mapping[str, Served], weights: Sequence[int]) -> dict[str, dict[str, float]]:
        """p50/p99 of (c), (d), (e) over the steps that analysis decided (every weight after the first)."""
        recorded, written, served = [], [], []
        for name, tl in timelines.items():
            for w in (*weights[1:], 100):
                if (name, w) not in self.at or w not in tl.writes:
                    continue
                end, at = self.at[(name, w)]
                recorded.append(at - end)
                written.append(tl.writes[w] - at)
                if w in tl.served:
                    served.append(tl.served[w] - tl.writes[w])
        return {
            "(c) window end -> decision recorded": _p(recorded),
            "(d) decision -> traffic written": _p(written),
            "(e) traffic written -> served": _p(served),
        }


def _p(values: list[float]) -> dict[str, float]:
    return {"p50": round(quantile(values, 0.5), 3), "p99": round(quantile(values, 0.99), 3), "n": len(values)}


def analysis_parts(
    decisions: Decisions,
    timelines: Mapping[str, Served],
    controller_metrics: str,
    weights: Sequence[int],
    queryable_after: float,
) -> dict[str, dict[str, float]]:
    """The analysis path in parts, (a) and (b) first. `queryable_after`: the controller's settle wait, after
    which it queries a window (the newest sample in it is then up to one scrape interval old)."""
    answered = "knrollout_analysis_answered_seconds"
    return {
        "(a) the controller's settle wait (configured)": {"p50": queryable_after, "p99": queryable_after},
        "(b) window end -> queries answered": {
            "p50": round(histogram_quantile(controller_metrics, answered, 0.5), 3),
            "p99": round(histogram_quantile(controller_metrics, answered, 0.99), 3),
        },
        **decisions.parts(timelines, weights),
    }


def prometheus_share(before: dict[str, float], after: dict[str, float], ticks: float) -> dict[str, float]:
    """Prometheus' own work during the rollouts: CPU seconds, queries, mean query time, samples per query."""
    queries = after.get("queries", 0.0) - before.get("queries", 0.0)
    seconds = after.get("query_seconds", 0.0) - before.get("query_seconds", 0.0)
    samples = after.get("samples", 0.0) - before.get("samples", 0.0)
    return {
        "cpu_seconds": round(after.get("cpu", 0.0) - before.get("cpu", 0.0), 1),
        "queries": queries,
        "queries_per_tick": round(queries / ticks, 2) if ticks else float("nan"),
        "mean_query_ms": round(1000 * seconds / queries, 1) if queries else float("nan"),
        "samples_per_query": round(samples / queries) if queries and samples else float("nan"),
    }
