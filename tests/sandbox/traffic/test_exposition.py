"""The exposition renders incrementally (cached label text and lines per series): what it serves after any
mix of observations, renders and dropped series must be the text a fresh registry with the same state gives."""

from __future__ import annotations

import random

from prometheus_client.parser import text_string_to_metric_families

from rollout_lab.sandbox.traffic.exposition import Family, LabelValues, Registry

BUCKETS = (5.0, 10.0, 50.0, 100.0)


def _replay(events: list[tuple[str, LabelValues, float]]) -> str:
    fresh = Registry()
    counter = fresh.counter("requests", "Requests", ("pod", "code"))
    histogram = fresh.histogram("latency", "Latency", ("pod",), BUCKETS)
    for kind, values, amount in events:
        if kind == "inc":
            counter.inc(values, amount)
        else:
            histogram.observe(values, amount)
    return fresh.render()


def test_incremental_render_matches_a_fresh_render() -> None:
    rng = random.Random(7)
    live = Registry()
    counter = live.counter("requests", "Requests", ("pod", "code"))
    histogram = live.histogram("latency", "Latency", ("pod",), BUCKETS)
    events: list[tuple[str, LabelValues, float]] = []
    pods = ["a", "b", 'c"quoted\\', "d"]
    for round_ in range(8):
        for _ in range(rng.randrange(0, 40)):
            pod = rng.choice(pods)
            if rng.random() < 0.5:
                values: LabelValues = (pod, rng.choice(["200", "503"]))
                counter.inc(values)
                events.append(("inc", values, 1.0))
            else:
                latency = rng.expovariate(1 / 30.0)
                histogram.observe((pod,), latency)
                events.append(("observe", (pod,), latency))
        if round_ % 3 == 2:  # a pod goes away: its series vanish, and start again at zero if it returns
            gone = rng.choice(pods)

            def keep(family: Family, values: LabelValues, gone: str = gone) -> bool:
                return values[0] != gone

            live.drop(keep)
            events = [e for e in events if e[1][0] != gone]
        text = live.render()
        assert text == _replay(events)
        assert live.render() == text  # a render with nothing new is the same text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        if "latency" in families:
            for sample in families["latency"].samples:
                assert sample.value >= 0
