"""The traffic generator on a virtual clock: the split it sends, tag headers, behaviour annotations,
cold starts and activator overflow, per-pod series, and the exposition format."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rollout.knative import dialects
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.traffic.behaviour import ServiceLoad, revision_behaviour, service_load
from rollout_lab.sandbox.traffic.exporters import ClassicExporter
from rollout_lab.sandbox.traffic.generator import GeneratorSettings, TrafficGenerator, arrivals
from tests.sandbox.knative.harness import Sandbox, sandbox, service_manifest, template
from tests.sandbox.traffic.expected import histogram_quantile, lognormal_cdf, with_tail

P = "sandbox.knrollout.dev/"


@contextlib.asynccontextmanager
async def running(**settings: Any) -> AsyncIterator[tuple[Sandbox, TrafficGenerator]]:
    async with sandbox() as sb:
        generator = TrafficGenerator(
            sb.store, sb.sim.fleet, sb.clock, GeneratorSettings(seed=5, tick=0.5, **settings)
        )
        task = asyncio.ensure_future(generator.run())
        try:
            yield sb, generator
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def classic(generator: TrafficGenerator) -> ClassicExporter:
    exporter = generator.exporters[0]
    assert isinstance(exporter, ClassicExporter)
    return exporter


def counts_by(generator: TrafficGenerator, family: str, *labels: str) -> dict[tuple[str, ...], float]:
    exporter = classic(generator)
    counter = {
        dialects.CLASSIC_REQUEST_COUNT: exporter.request_count,
        dialects.CLASSIC_ACTIVATOR_REQUEST_COUNT: exporter.activator_count,
    }[family]
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for values, count in counter.series.items():
        named = dict(zip(counter.label_names, values, strict=True))
        out[tuple(named[label] for label in labels)] += count
    return dict(out)


def per_revision(generator: TrafficGenerator) -> dict[str, float]:
    return {
        key[0]: value
        for key, value in counts_by(generator, dialects.CLASSIC_REQUEST_COUNT, "revision_name").items()
    }


async def two_revisions(
    sb: Sandbox, traffic: list[dict[str, Any]], canary: dict[str, str] | None = None
) -> None:
    sb.store.create(kinds.KSERVICES, service_manifest(annotations=None))
    await sb.advance(3)
    sb.update_service(template=template("x:2", annotations=canary), traffic=traffic)
    await sb.advance(3)


async def test_split_follows_status_traffic() -> None:
    async with running(default_rps=50) as (sb, generator):
        await two_revisions(
            sb,
            [{"revisionName": "hello-00001", "percent": 70}, {"revisionName": "hello-00002", "percent": 30}],
        )
        before = per_revision(generator)
        await sb.advance(200)
        after = per_revision(generator)
        sent = {name: after[name] - before.get(name, 0.0) for name in after}
        total = sum(sent.values())
        assert abs(total - 50 * 200) < 5 * math.sqrt(50 * 200)  # Poisson
        assert abs(sent["hello-00002"] / total - 0.30) < 0.02


async def test_tag_header_traffic_reaches_the_tagged_revision() -> None:
    async with running(default_rps=40) as (sb, generator):
        await two_revisions(
            sb,
            [
                {"revisionName": "hello-00001", "percent": 100},
                {"revisionName": "hello-00002", "tag": "canary"},
            ],
        )
        sb.update_service(annotations={P + "tag-traffic": "canary=0.2"})
        before = per_revision(generator)
        await sb.advance(200)
        after = per_revision(generator)
        canary = after["hello-00002"] - before.get("hello-00002", 0.0)
        total = sum(after.values()) - sum(before.values())
        assert abs(canary / total - 0.2) < 0.02


async def test_old_split_served_until_the_new_revision_is_ready() -> None:
    async with running(default_rps=20) as (sb, generator):
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(3)
        slow = template("x:2", annotations={P + "ready-delay": "60s"})
        sb.update_service(
            template=slow,
            traffic=[
                {"revisionName": "hello-00001", "percent": 50},
                {"revisionName": "hello-00002", "percent": 50},
            ],
        )
        await sb.advance(50)
        assert "hello-00002" not in per_revision(generator)
        await sb.advance(30)
        assert per_revision(generator)["hello-00002"] > 100


async def test_error_rate_and_tail_latency_from_annotations() -> None:
    behaviour = {
        P + "error-rate": "0.05",
        P + "error-code": "503",
        P + "latency-median": "80ms",
        P + "latency-sigma": "0.25",
        P + "latency-tail-share": "0.03",
        P + "latency-tail": "1500ms",
    }
    async with running(default_rps=200) as (sb, generator):
        await two_revisions(sb, [{"revisionName": "hello-00002", "percent": 100}], canary=behaviour)
        await sb.advance(200)
        codes = counts_by(generator, dialects.CLASSIC_REQUEST_COUNT, "revision_name", "response_code")
        errors, ok = codes[("hello-00002", "503")], codes[("hello-00002", "200")]
        n = errors + ok
        assert abs(errors / n - 0.05) < 5 * math.sqrt(0.05 * 0.95 / n)
        histogram = classic(generator).app_latencies
        buckets = [0] * len(histogram.buckets)
        for values, series in histogram.series.items():
            if values[3] == "hello-00002":
                buckets = [a + b for a, b in zip(buckets, series.counts, strict=True)]
        cumulative, total = [], sum(buckets)
        running_sum = 0
        for count in buckets:
            running_sum += count
            cumulative.append(running_sum / total)
        bounds = dialects.CLASSIC_LATENCY_BUCKETS_MS
        measured = histogram_quantile(0.99, bounds, lambda x: cumulative[bounds.index(x)])
        cdf = with_tail(lognormal_cdf(80.0, 0.25), 0.03, 1500.0)
        expected = histogram_quantile(0.99, bounds, cdf)
        assert 1500 < expected < 2000
        assert abs(measured - expected) / expected < 0.05
        assert abs(histogram_quantile(0.5, bounds, lambda x: cumulative[bounds.index(x)]) - 80.0) < 8.0


async def test_scale_to_zero_cold_start_and_activator_overflow() -> None:
    async with running(default_rps=0) as (sb, generator):
        sb.store.create(
            kinds.KSERVICES,
            service_manifest(annotations={P + "cold-start": "4s", P + "activator-capacity": "10"}),
        )
        await sb.advance(200)  # no traffic: scaled to zero
        runtime = sb.sim.fleet.get("default", "hello-00001")
        assert runtime is not None and runtime.pods == []
        revision = sb.revision("hello-00001")
        active = next(c for c in revision["status"]["conditions"] if c["type"] == "Active")
        assert (active["status"], active["reason"]) == ("False", "NoTraffic")
        assert revision["status"]["actualReplicas"] == 0
        sb.update_service(annotations={P + "rps": "20"})
        await sb.advance(10)
        via_activator = counts_by(generator, dialects.CLASSIC_ACTIVATOR_REQUEST_COUNT, "response_code")
        # about 4 s x 20 rps arrive during the cold start; the activator buffers 10 and rejects the rest
        assert via_activator[("503",)] > 30
        queue = counts_by(generator, dialects.CLASSIC_REQUEST_COUNT, "response_code")
        assert ("503",) not in queue  # activator 503s never reach a queue-proxy
        activator_hist = classic(generator).activator_latencies
        slow = sum(
            sum(s.counts[dialects.CLASSIC_LATENCY_BUCKETS_MS.index(2000) + 1 :])
            for v, s in activator_hist.series.items()
            if v[6] == "200"
        )
        assert 8 <= slow <= 10  # the buffered requests, which waited for the cold start (> 2 s)
        revision = sb.revision("hello-00001")
        active = next(c for c in revision["status"]["conditions"] if c["type"] == "Active")
        assert active["status"] == "True"


async def test_activator_stays_in_the_path_while_burst_capacity_is_short() -> None:
    async with running(default_rps=20) as (sb, generator):
        sb.store.create(kinds.KSERVICES, service_manifest(name="small"))  # 1 pod, target-burst-capacity 211
        no_tbc = {"autoscaling.knative.dev/target-burst-capacity": "0"}
        sb.store.create(kinds.KSERVICES, service_manifest(name="direct", annotations=no_tbc))
        await sb.advance(60)
        activator = counts_by(generator, dialects.CLASSIC_ACTIVATOR_REQUEST_COUNT, "service_name")
        queue = counts_by(generator, dialects.CLASSIC_REQUEST_COUNT, "service_name")
        assert activator[("small",)] == queue[("small",)] > 1000  # proxied: counted by both
        assert activator.get(("direct",), 0.0) < 0.01 * queue[("direct",)]


async def test_series_of_a_gone_pod_disappear_and_exposition_parses() -> None:
    async with running(default_rps=10, dialects=("knative-classic", "knative-otel", "kourier")) as (sb, gen):
        sb.store.create(kinds.KSERVICES, service_manifest())
        await sb.advance(30)
        text = gen.render_metrics()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name in (
            "revision_request_count",
            "revision_app_request_latencies",
            "kn_serving_invocation_duration_seconds",
            "envoy_cluster_upstream_rq",
            "envoy_cluster_upstream_rq_time",
        ):
            assert name in families, name
        assert "revision_request_count_total" not in text  # Knative's counters carry no _total suffix
        sample = next(s for s in families["revision_request_count"].samples)
        assert set(sample.labels) == set(dialects.CLASSIC_REVISION_LABELS)
        assert sample.labels["pod_name"].startswith("hello-00001-deployment-")
        assert sample.labels["container_name"] == "queue-proxy"
        otel = next(s for s in families["kn_serving_invocation_duration_seconds"].samples if "le" in s.labels)
        assert otel.labels["kn_revision_name"] == "hello-00001"
        envoy = next(s for s in families["envoy_cluster_upstream_rq"].samples)
        assert envoy.labels["envoy_cluster_name"] == "default/hello-00001"
        old_pod = sample.labels["pod_name"]
        sb.update_service(annotations={P + "rps": "0"})
        await sb.advance(300)  # idle: scaled to zero, the pod is gone
        assert old_pod not in gen.render_metrics()


def test_behaviour_annotations_and_problems() -> None:
    behaviour, problems = revision_behaviour({P + "error-rate": "0.2", P + "latency-median": "fast"})
    assert behaviour.error_rate == 0.2 and behaviour.latency_median == 0.05
    assert len(problems) == 1 and "latency-median" in problems[0]
    load, problems = service_load(
        {P + "tag-traffic": "a=0.1, b=0.2", P + "rps": "-1"}, default_rps=3, default_amplitude=0
    )
    assert load.tag_traffic == {"a": 0.1, "b": 0.2} and load.rps == 3 and len(problems) == 1


def test_diurnal_arrivals_follow_the_rate() -> None:
    load = ServiceLoad(rps=10.0, diurnal_amplitude=0.5, diurnal_period=400.0)
    times = arrivals(load, 0.0, 400.0 * 20, random.Random(1))
    assert abs(len(times) / (400.0 * 20) - 10.0) < 0.2
    peak = sum(1 for t in times if (t % 400.0) < 200.0)  # sin > 0 half: 10 x (1 + 0.5 x 2/pi)
    assert abs(peak / (200.0 * 20) - 10.0 * (1 + 0.5 * 2 / math.pi)) < 0.3
