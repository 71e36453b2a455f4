"""bench/scale.py's analysis path in parts: the histogram reading and the per-step parts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

from bench.scale_parts import Decisions
from bench.scale_probe import histogram_quantile, prometheus_counters

EXPOSITION = """\
# HELP knrollout_analysis_answered_seconds x
knrollout_analysis_answered_seconds_bucket{le="0.5"} 0.0
knrollout_analysis_answered_seconds_bucket{le="1.0"} 8.0
knrollout_analysis_answered_seconds_bucket{le="2.5"} 10.0
knrollout_analysis_answered_seconds_bucket{le="+Inf"} 10.0
knrollout_analysis_answered_seconds_count 10.0
process_cpu_seconds_total 12.5
prometheus_http_request_duration_seconds_count{handler="/api/v1/query"} 40
prometheus_http_request_duration_seconds_sum{handler="/api/v1/query"} 0.8
prometheus_http_request_duration_seconds_count{handler="/metrics"} 7
"""


def test_a_histogram_quantile_interpolates_inside_its_bucket() -> None:
    name = "knrollout_analysis_answered_seconds"
    assert math.isclose(histogram_quantile(EXPOSITION, name, 0.5), 0.8125)  # 5 of 8 into (0.5, 1.0]
    assert math.isclose(histogram_quantile(EXPOSITION, name, 0.9), 1.75)
    assert math.isnan(histogram_quantile(EXPOSITION, "absent", 0.5))


def test_prometheus_counters_read_only_the_query_handler() -> None:
    found = prometheus_counters(EXPOSITION)
    assert (found["cpu"], found["queries"], found["query_seconds"]) == (12.5, 40, 0.8)


@dataclass
class Seen:
    writes: dict[int, float] = field(default_factory=dict)
    served: dict[int, float] = field(default_factory=dict)


def test_parts_follow_each_decided_step_from_its_window() -> None:
    decisions = Decisions()
    listen = decisions.listener(lambda: 101.0, wall_offset=1_700_000_000.0)
    status = {"canaryWeight": 30, "lastAnalysisAt": "2023-11-14T22:15:00Z"}  # 1_700_000_000 + 100 s
    listen(None, SimpleNamespace(obj={"spec": {"target": {"name": "svc"}}, "status": status}))
    listen(None, SimpleNamespace(obj={"spec": {"target": {"name": "svc"}}, "status": status}))  # once
    parts = decisions.parts({"svc": Seen(writes={30: 101.25}, served={30: 101.5})}, (10, 30, 60))
    assert parts["(c) window end -> decision recorded"]["p50"] == 1.0
    assert parts["(d) decision -> traffic written"]["p50"] == 0.25
    assert parts["(e) traffic written -> served"]["p50"] == 0.25
