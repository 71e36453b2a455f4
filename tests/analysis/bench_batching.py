"""Queries and wall time of one analysis tick, batched (ours) against one tick per rollout and metric (the
Flagger way: each canary queries on its own; here each still measures canary and stable together), on a
real local Prometheus. Two builtin metrics per rollout (error rate: 2 families; latency: 1).

    .venv/bin/python -m tests.analysis.bench_batching [--rollouts 10 100 400]

Prints a table. Not a test: a measurement (the tests check the counts the batches return).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from rollout.analysis.batching import AnalysisRequest, run_tick
from rollout.analysis.dialects import KNATIVE_CLASSIC
from rollout.analysis.prometheus import PrometheusSources
from rollout.analysis.source import QueryStats, SourceRef
from rollout.api.policy import BuiltinMetric
from rollout.api.source import MetricSource, PrometheusSource
from tests.analysis import prometheus_server
from tests.analysis.conftest import DictSecrets
from tests.analysis.prometheus_server import Series

T0 = 1_700_000_000
AT = datetime.fromtimestamp(T0 + 600, tz=UTC)


def _series(rollouts: int) -> list[Series]:
    out: list[Series] = []
    for i in range(rollouts):
        for rev in ("00001", "00002"):
            labels = {
                "namespace_name": f"ns{i % 20}",
                "revision_name": f"svc{i}-{rev}",
                "pod_name": f"p{i}{rev}",
            }
            for cls, per_step in (("2xx", 10), ("5xx", 1)):
                samples = [(float(T0 + 15 * k), float(per_step * k)) for k in range(61)]
                out.append(Series("revision_request_count", {**labels, "response_code_class": cls}, samples))
            for le, per_step in (("50", 5), ("500", 9), ("+Inf", 11)):
                samples = [(float(T0 + 15 * k), float(per_step * k)) for k in range(61)]
                out.append(Series("revision_request_latencies_bucket", {**labels, "le": le}, samples))
    return out


def _requests(rollouts: int, ref: SourceRef) -> list[AnalysisRequest]:
    out: list[AnalysisRequest] = []
    for i in range(rollouts):
        errors = AnalysisRequest(
            rollout=f"ns{i % 20}/svc{i}",
            metric="error-rate",
            source=ref,
            namespace=f"ns{i % 20}",
            service=f"svc{i}",
            canary=f"svc{i}-00002",
            stable=f"svc{i}-00001",
            window_seconds=300.0,
            at=AT,
            builtin=BuiltinMetric.ERROR_RATE,
            dialect=KNATIVE_CLASSIC,
        )
        out += [errors, replace(errors, metric="latency", builtin=BuiltinMetric.LATENCY)]
    return out


async def _tick(url: str, requests: list[AnalysisRequest], one_by_one: bool) -> tuple[int, float]:
    stats: list[QueryStats] = []
    sources = PrometheusSources(DictSecrets({}), default_address=url, observer=stats.append)
    started = time.perf_counter()
    try:
        if one_by_one:  # one tick per rollout and metric: what a per-canary loop does
            await asyncio.gather(*(run_tick([r], sources) for r in requests))
        else:
            await run_tick(requests, sources)
    finally:
        sources.close()
    return len(stats), time.perf_counter() - started


async def _main(counts: list[int]) -> None:
    print(f"{'rollouts':>8}  {'mode':<22}{'queries':>8}  {'seconds':>8}")
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            data = prometheus_server.backfill(_series(n), workdir)
            server = prometheus_server.start(data, workdir)
            try:
                ref = SourceRef.of(MetricSource(prometheus=PrometheusSource()), "ns0")
                requests = _requests(n, ref)
                for mode, one_by_one in (("batched (ours)", False), ("per rollout and metric", True)):
                    queries, seconds = await _tick(server.url, requests, one_by_one)
                    print(f"{n:>8}  {mode:<22}{queries:>8}  {seconds:>8.3f}")
            finally:
                server.stop()


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, nargs="+", default=[10, 100, 400])
    asyncio.run(_main(parser.parse_args().rollouts))


if __name__ == "__main__":
    main()
