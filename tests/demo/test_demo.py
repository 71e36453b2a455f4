"""`rollout demo` (the README's first command) works end to end, and its no-Prometheus path measures right."""

from __future__ import annotations

import io
import re
import shutil
from datetime import UTC, datetime

import pytest

from rollout.analysis.dialects import KNATIVE_CLASSIC
from rollout.analysis.keys import RevisionKey
from rollout.analysis.source import BuiltinQuery, CustomQuery
from rollout.api.policy import BuiltinMetric
from rollout.engine.observations import LatencyHistogram, MeasurementError, NoData, RequestCounts
from rollout_lab.demo.run import DemoOptions, run_demo
from rollout_lab.sandbox.traffic.direct import DirectMetricSource, OutcomeWindows
from rollout_lab.sandbox.traffic.exporters import Outcome


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed")
async def test_demo_promotes_the_good_revision_and_rolls_back_the_bad_one() -> None:
    out = io.StringIO()
    code = await run_demo(DemoOptions(), out)
    text = out.getvalue()
    assert code == 0, text
    assert "a real Prometheus at http://127.0.0.1:" in text
    assert "hello-00002  Succeeded" in text and "(Promoted)" in text
    assert "hello-00003  RolledBack" in text and "(RegressionDetected)" in text
    assert "error-rate" in text and "vs stable" in text and "(max 5.00%)" in text
    # each rollout's last progress line: finished, and its final split served (no `*`)
    assert re.search(r"hello-00002\s+Succeeded\s.*canary\s+100%(?!\*)", text), text
    assert re.search(r"hello-00003\s+RolledBack\s.*canary\s+0%(?!\*)", text), text


def _outcome(revision: str, code: int, latency: float) -> Outcome:
    return Outcome(
        "default", "hello", "hello", revision, code, "pod", code, latency, latency, False, 0.0, latency
    )


async def test_direct_metric_source_counts_requests_failures_and_latency_per_revision() -> None:
    now = [1000.0]
    windows = OutcomeWindows(lambda: now[0])
    for i in range(100):
        now[0] = 1000.0 + i * 0.1  # ten seconds of traffic
        windows.record(_outcome("a", 500 if i % 10 == 0 else 200, 0.05))
        windows.record(_outcome("b", 200, 0.3))
    now[0] = 1010.0
    source = DirectMetricSource(windows, lambda: now[0])
    keys = frozenset({RevisionKey("default", "a"), RevisionKey("default", "b"), RevisionKey("default", "c")})
    at = datetime.fromtimestamp(1010.0, UTC)
    errors = await source.query(BuiltinQuery(BuiltinMetric.ERROR_RATE, KNATIVE_CLASSIC, 10.0, keys, at))
    assert errors[RevisionKey("default", "a")] == RequestCounts(100, 10)
    assert errors[RevisionKey("default", "b")] == RequestCounts(100, 0)
    assert isinstance(errors[RevisionKey("default", "c")], NoData)
    half = await source.query(BuiltinQuery(BuiltinMetric.ERROR_RATE, KNATIVE_CLASSIC, 5.0, keys, at))
    assert half[RevisionKey("default", "a")] == RequestCounts(50, 5)
    latency = await source.query(BuiltinQuery(BuiltinMetric.LATENCY, KNATIVE_CLASSIC, 10.0, keys, at))
    hist = latency[RevisionKey("default", "b")]
    assert isinstance(hist, LatencyHistogram) and hist.total == 100
    assert hist.slow(0.25) == 100 and hist.slow(0.3) == 0
    custom = await source.query(CustomQuery("up", keys, at))
    assert all(isinstance(m, MeasurementError) for m in custom.values())
