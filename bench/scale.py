"""Scale benchmark: N Knative Services rolling out at once in the sandbox, one controller replica.

    .venv/bin/python bench/scale.py [--services 1000] [--baseline 100] [--bake 3] [--json]
    .venv/bin/python bench/scale.py --analysis [--rps 10] ...   # steps judged on real Prometheus metrics
    .venv/bin/python bench/scale.py --analysis --scrape 5 --window 10 --bake 10 ...   # a cluster's cadence

The sandbox (API server + Knative simulator) runs in this process; the controller runs as a separate
process (`rollout controller --kubeconfig ...`), so its CPU time and peak RSS are its own. Every Service gets
a new revision at the same moment and walks a 10/30/60% canary ladder (bake --bake seconds per step) to
promotion: without metric analysis by default (this measures the controller, not Prometheus), or with
--analysis, where a local Prometheus scrapes the traffic generator (every --scrape seconds) and every step is
judged on error rate and latency, as standard-canary judges them (--judge compare) or on thresholds alone
(--judge threshold), in windows of --window seconds (the step lag then includes waiting for the next aligned
analysis window). --controller-cpu K gives the controller a CPU of its own.

Reported (for the baseline size and the full size, in the same run):
- step lag: from the moment a step was due (Knative served the step's split + its bake time; for the first
  step, the candidate revision turned Ready and the Service's status named it as its latest created
  revision, whichever came later: the controller learns of a candidate from that status) to the moment the
  controller wrote the next split; p50/p99/max. The first step is also reported from the revision's Ready
  alone, which includes the time the sandbox's Knative took to name the revision in the Service's status;
- API writes per step (the controller's create/patch/update/delete, Lease renewals excluded), Service
  reconciles per step, and all the writes the sandbox committed per step (the controller's, its Events and
  Lease renewals, and the Knative simulator's own status writes);
- per wave (the weight written): step lag p50/p99/max and over how many seconds that wave fell due;
- controller CPU seconds (in all, and from the new revisions until all promoted) and peak RSS (VmHWM), the
  sandbox's CPU seconds over the same span (this process: API server, Knative simulator, the bench's own
  bookkeeping), time to onboard (pin) all Services, time to finish;
- with --analysis: analysis ticks, queries per tick (one per source, metric template and window, whatever
  the number of rollouts) and the HTTP queries Prometheus received per tick.

All Services step at the same moments, so each step is a wave of N traffic writes (plus the controller's
status and Event writes, and the Knative simulator's reconcile of each): the step lag at large N is the time
both processes need to work through a wave. Compare the controller's CPU seconds with the wall time to see
which of the two is saturated (the sandbox's CPU is this process's).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scale_fleet import Fleet  # noqa: E402
from bench.scale_parts import Decisions, analysis_parts, prometheus_share  # noqa: E402
from bench.scale_policy import JUDGES, WEIGHTS, policy  # noqa: E402
from bench.scale_probe import (  # noqa: E402
    metrics_text,
    prometheus_counters,
    quantile,
    wait_for,
)
from bench.scale_report import Result, debug_report, shard_table, table  # noqa: E402
from rollout.cli.process_tuning import freeze_startup, tune_gc  # noqa: E402
from rollout.controller.app import DEFAULT_WORKERS  # noqa: E402
from rollout.kube.shards import shard_of  # noqa: E402
from rollout_lab.sandbox.apiserver import kinds  # noqa: E402
from rollout_lab.sandbox.environment import SandboxOptions, sandbox_environment  # noqa: E402
from tests.integration.harness import POLICIES, ROLLOUTS, install_crds, template  # noqa: E402

SETTLE = 0.5  # the controller's --analysis-settle in this bench
SCRAPE_INTERVAL = 1.0  # the sandbox Prometheus' scrape interval in this bench (--scrape)
WINDOW = 2.0  # the policy's analysis interval (--window)


@dataclass
class Timeline:
    """What the sandbox saw of one Service, by loop time."""

    first_ready: bool = False  # the first revision is served
    pinned: bool = False  # spec.traffic carries the controller's `stable` tag
    ready: float | None = None  # candidate revision Ready
    named: float | None = None  # the Service's status names the candidate (latestCreatedRevisionName)
    writes: dict[int, float] = field(default_factory=dict)  # candidate weight -> first spec.traffic write
    served: dict[int, float] = field(
        default_factory=dict
    )  # candidate weight -> first Ready status serving it


def _candidate_weight(entries: list[dict[str, Any]], candidate: str) -> int:
    return sum(int(e.get("percent") or 0) for e in entries if e.get("revisionName") == candidate)


async def run(
    n: int,
    bake: float,
    limit: float,
    analysis: bool = False,
    rps: float = 2.0,
    judge: str = "compare",
    scrape: float = SCRAPE_INTERVAL,
    window: float = WINDOW,
    tuned_gc: bool = False,
    workers: int = DEFAULT_WORKERS,
    controller_args: Sequence[str] = (),
    shards: int = 1,
    namespaces: int = 1,
    profiles: Path | None = None,
    controller_cpus: frozenset[int] | None = None,
) -> Result:
    options = SandboxOptions(
        rps=rps if analysis else 0.0,
        ready_delay=0.5,
        cold_start=0.2,
        seed=1,
        generator_tick=1.0,
        prometheus=analysis,
        scrape_interval=scrape,
    )
    async with sandbox_environment(options) as env:
        store = env.store
        loop = asyncio.get_running_loop()
        install_crds(store)
        names = [f"svc-{i:04d}" for i in range(n)]
        spaces = ["default"] if namespaces <= 1 else [f"team-{i:03d}" for i in range(namespaces)]
        ns_of = {name: spaces[i % len(spaces)] for i, name in enumerate(names)}
        for ns in spaces:
            if store.get(kinds.NAMESPACES, None, ns) is None:
                store.create(
                    kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                )
            store.create(POLICIES, policy(ns, bake, analysis, judge, window))
        timelines = {name: Timeline() for name in names}

        def on_service(rt: Any, entry: Any) -> None:
            tl = timelines.get(entry.name)
            if tl is None or entry.type == "DELETED":
                return
            obj, old = entry.obj, entry.old or {}
            candidate = f"{entry.name}-00002"
            now = loop.time()
            spec = (obj.get("spec") or {}).get("traffic") or []
            tl.pinned = tl.pinned or any(e.get("tag") == "stable" for e in spec)
            tl.first_ready = tl.first_ready or bool((obj.get("status") or {}).get("latestReadyRevisionName"))
            if spec != ((old.get("spec") or {}).get("traffic") or []):
                w = _candidate_weight(spec, candidate)
                tl.writes.setdefault(w, now)
            status = obj.get("status") or {}
            if tl.named is None and status.get("latestCreatedRevisionName") == candidate:
                tl.named = now
            ready = any(
                c.get("type") == "RoutesReady" and c.get("status") == "True"
                for c in status.get("conditions") or ()
            )
            current = status.get("observedGeneration") == obj["metadata"].get("generation")
            if ready and current:
                w = _candidate_weight(status.get("traffic") or [], candidate)
                if w in tl.writes:
                    tl.served.setdefault(w, now)

        def on_revision(rt: Any, entry: Any) -> None:
            name = entry.name
            if not name.endswith("-00002"):
                return
            tl = timelines.get(name[: -len("-00002")])
            conds = (entry.obj.get("status") or {}).get("conditions") or ()
            if (
                tl is not None
                and tl.ready is None
                and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
            ):
                tl.ready = loop.time()

        applied_at: dict[
            tuple[str, int], float
        ] = {}  # (service, step) -> the status write saying it is served

        decided_at: dict[tuple[str, int], float] = {}  # (service, weight) -> the status write deciding it
        seen_at: dict[tuple[str, int], float] = {}  # (service, weight) -> the controller saw it served
        wall_offset = time.time() - loop.time()

        def on_rollout(rt: Any, entry: Any) -> None:
            status = (entry.obj or {}).get("status") or {}
            target = ((entry.obj or {}).get("spec") or {}).get("target", {}).get("name")
            if not target:
                return
            now, key = loop.time(), (target, int(status.get("canaryWeight") or 0))
            if status.get("trafficApplied") and status.get("stepStartedAt"):
                applied_at.setdefault(key, now)
                started = datetime.fromisoformat(status["stepStartedAt"].replace("Z", "+00:00"))
                seen_at.setdefault(key, started.timestamp() - wall_offset)
            if "canaryWeight" in status:
                decided_at.setdefault(key, now)

        commits_by_kind: dict[str, int] = {}

        def count(rt: Any, entry: Any) -> None:
            commits_by_kind[rt.plural] = commits_by_kind.get(rt.plural, 0) + 1

        if os.environ.get("SCALE_DEBUG"):  # bookkeeping in the sandbox's process: only when asked for
            for rt in (kinds.KSERVICES, kinds.ROUTES, kinds.CONFIGURATIONS, kinds.REVISIONS, kinds.EVENTS):
                store.on_commit(rt, count)
            store.on_commit(ROLLOUTS, count)
            store.on_commit(ROLLOUTS, on_rollout)
        decisions = Decisions()
        if analysis:
            store.on_commit(ROLLOUTS, decisions.listener(loop.time, wall_offset))
        store.on_commit(kinds.KSERVICES, on_service)
        store.on_commit(kinds.REVISIONS, on_revision)
        for name in names:
            store.create(
                kinds.KSERVICES,
                {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "metadata": {
                        "name": name,
                        "namespace": ns_of[name],
                        "labels": {"knrollout.dev/policy": "scale"},
                    },
                    "spec": {"template": template("ghcr.io/acme/app:v1")},
                },
            )
        await wait_for(
            lambda: all(tl.first_ready for tl in timelines.values()), limit, "first revisions Ready"
        )

        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = env.api.write_kubeconfig(Path(tmp) / "kubeconfig")
            args = [
                "--log-format",
                "json",
                "--log-level",
                "warning",
                "--workers",
                str(workers),
                *controller_args,
                *(
                    ["--prometheus-url", env.prometheus.url, "--analysis-settle", f"{SETTLE}s"]
                    if env.prometheus
                    else []
                ),
            ]
            fleet = await Fleet.start(kubeconfig, Path(tmp), shards, args, ROOT, profiles, controller_cpus)
            try:
                started = loop.time()

                def pinned_all() -> bool:
                    fleet.check_alive()
                    return all(tl.pinned for tl in timelines.values())

                await wait_for(pinned_all, limit, "onboarding")
                onboard = loop.time() - started
                await fleet.events_sent(limit)  # onboarding's Events are not counted
                writes_before = await fleet.writes()
                counts_before = await fleet.counts()
                prom_url = env.prometheus.url if env.prometheus is not None else None
                prom_before = prometheus_counters(await metrics_text(prom_url)) if prom_url else {}
                began = loop.time()
                stats_before = fleet.stats()
                sandbox_before = time.process_time()
                rv_before = int(store.resource_version)
                kinds_before = dict(commits_by_kind)
                gc_before = dict(GC_SECONDS)
                if tuned_gc:
                    freeze_startup()  # the sandbox's objects so far (its stores, the first revisions)
                for name in names:
                    svc = store.get(kinds.KSERVICES, ns_of[name], name)
                    assert svc is not None
                    svc.pop("status", None)
                    svc["spec"]["template"] = template("ghcr.io/acme/app:v2")
                    store.update(kinds.KSERVICES, svc)

                def promoted() -> int:
                    return sum(1 for tl in timelines.values() if 100 in tl.served)

                try:
                    await wait_for(lambda: promoted() == n, limit, "rollouts")
                except TimeoutError as exc:
                    print(f"warning: {exc} ({promoted()}/{n} promoted)", file=sys.stderr)
                elapsed = loop.time() - began
                stats_after = fleet.stats()  # before the bench polls /metrics below
                sandbox_rollout = time.process_time() - sandbox_before
                commits = int(store.resource_version) - rv_before
                rollout_commits = {k: v - kinds_before.get(k, 0) for k, v in commits_by_kind.items()}
                gc_rollout = {g: round(v - gc_before.get(g, 0.0), 2) for g, v in GC_SECONDS.items()}
                await fleet.events_sent(limit)  # Events are sent off the critical path
                after = await fleet.writes()
                counts = await fleet.counts()
                answered = await fleet.metrics_text()
                prom_after = prometheus_counters(await metrics_text(prom_url)) if prom_url else {}
                ticks = counts["ticks"] - counts_before["ticks"]
                batches = counts["batches"] - counts_before["batches"]
                http = counts["http"] - counts_before["http"]
                reconciles = counts["reconciles"] - counts_before["reconciles"]
                breakdown = {
                    k: v - writes_before.get(k, 0) for k, v in after.items() if v - writes_before.get(k, 0)
                }
                writes = sum(breakdown.values())
                peaks = [rss for _, rss in fleet.stats()]  # the peaks, queued Events sent included
            finally:
                await fleet.stop()

    lags: list[float] = []
    from_ready: list[float] = []  # the first step, from the revision's Ready alone
    by_step: dict[int, list[float]] = {}  # the weight written -> lags
    due: dict[int, list[float]] = {}  # the weight written -> when each was due
    by_shard: dict[int, list[float]] = {}  # shard -> lags of its Services' steps
    for name, tl in timelines.items():
        before = len(lags)
        if tl.ready is not None and WEIGHTS[0] in tl.writes:
            first_due = max(tl.ready, tl.named if tl.named is not None else tl.ready)
            lags.append(tl.writes[WEIGHTS[0]] - first_due)
            by_step.setdefault(WEIGHTS[0], []).append(lags[-1])
            due.setdefault(WEIGHTS[0], []).append(first_due)
            from_ready.append(tl.writes[WEIGHTS[0]] - tl.ready)
        for w, nxt in zip(WEIGHTS, (*WEIGHTS[1:], 100), strict=True):
            if w in tl.served and nxt in tl.writes:
                lags.append(tl.writes[nxt] - (tl.served[w] + bake))
                by_step.setdefault(nxt, []).append(lags[-1])
                due.setdefault(nxt, []).append(tl.served[w] + bake)
        by_shard.setdefault(shard_of(ns_of[name], shards), []).extend(lags[before:])
    waves = {
        f"{w}%": {
            "p50": round(quantile(v, 0.5), 3),
            "p99": round(quantile(v, 0.99), 3),
            "max": round(max(v), 3),
            "due_spread": round(max(due[w]) - min(due[w]), 3),
        }
        for w, v in sorted(by_step.items())
    }
    if os.environ.get("SCALE_DEBUG"):
        debug_report(timelines, WEIGHTS, bake, rollout_commits, gc_rollout, seen_at, applied_at, decided_at)
    steps = sum(len([w for w in (*WEIGHTS, 100) if w in tl.writes]) for tl in timelines.values())
    return Result(
        services=n,
        onboard_seconds=round(onboard, 2),
        rollout_seconds=round(elapsed, 2),
        finished=sum(1 for tl in timelines.values() if 100 in tl.served),
        step_lag_p50=round(quantile(lags, 0.5), 3),
        step_lag_p99=round(quantile(lags, 0.99), 3),
        step_lag_max=round(max(lags, default=float("nan")), 3),
        first_from_ready_p50=round(quantile(from_ready, 0.5), 3),
        first_from_ready_p99=round(quantile(from_ready, 0.99), 3),
        steps=steps,
        writes=writes,
        writes_per_step=round(writes / steps, 2) if steps else float("nan"),
        reconciles_per_step=round(reconciles / steps, 2) if steps else float("nan"),
        cpu_seconds=round(sum(cpu for cpu, _ in stats_after), 1),
        cpu_rollout_seconds=round(
            sum(a[0] - b[0] for a, b in zip(stats_after, stats_before, strict=True)), 1
        ),
        sandbox_cpu_rollout_seconds=round(sandbox_rollout, 1),
        peak_rss_mb=round(max(peaks), 1),
        shards=[
            {
                "shard": k,
                "services": sum(1 for name in names if shard_of(ns_of[name], shards) == k),
                "cpu_rollout_seconds": round(stats_after[k][0] - stats_before[k][0], 1),
                "peak_rss_mb": round(peaks[k], 1),
                "step_lag_p50": round(quantile(by_shard.get(k, []), 0.5), 3),
                "step_lag_p99": round(quantile(by_shard.get(k, []), 0.99), 3),
            }
            for k in range(shards)
        ]
        if shards > 1
        else [],
        commits_per_step=round(commits / steps, 2) if steps else float("nan"),
        analysis_ticks=int(ticks),
        queries_per_tick=round(batches / ticks, 2) if ticks else float("nan"),
        http_queries_per_tick=round(http / ticks, 2) if ticks else float("nan"),
        write_breakdown=breakdown,
        waves=waves,
        analysis_parts=analysis_parts(decisions, timelines, answered, WEIGHTS, SETTLE) if analysis else {},
        prometheus=prometheus_share(prom_before, prom_after, ticks) if analysis else {},
    )


GC_SECONDS: dict[int, float] = {}  # the sandbox process's time in garbage collection, by generation
_gc_started = [0.0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        gen = info["generation"]
        GC_SECONDS[gen] = GC_SECONDS.get(gen, 0.0) + time.perf_counter() - _gc_started[0]


def _profile_dir(root: Path | None, n: int) -> Path | None:
    if root is None:
        return None
    where = root / f"N{n}"
    where.mkdir(parents=True, exist_ok=True)
    return where


def _split_cpus(parser: argparse.ArgumentParser, cpu: int | None) -> frozenset[int] | None:
    """--controller-cpu K: CPU K for the controllers; this process (the sandbox) and the Prometheus it starts
    move to the others now, before any thread or child exists, so that they all inherit it."""
    if cpu is None:
        return None
    available = os.sched_getaffinity(0)
    if cpu not in available or len(available) < 2:
        parser.error(
            f"--controller-cpu: CPU {cpu} is not one of this process's {sorted(available)}, or it is the only one"
        )
    os.sched_setaffinity(0, available - {cpu})
    return frozenset({cpu})


def main() -> None:
    if os.environ.get("SCALE_DEBUG"):
        gc.callbacks.append(_gc_timer)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument(
        "--baseline", type=int, default=100, help="a smaller run first, for comparison (0: none)"
    )
    parser.add_argument(
        "--sizes",
        help="comma-separated sizes, one run each (e.g. 100,300,1000), instead of --baseline/--services",
    )
    parser.add_argument("--bake", type=float, default=3.0, help="seconds per step")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--analysis",
        action="store_true",
        help="judge every step on real metrics: a local Prometheus scrapes the traffic generator (--rps per Service)",
    )
    parser.add_argument("--rps", type=float, default=2.0, help="requests/s per Service with --analysis")
    parser.add_argument(
        "--judge",
        choices=JUDGES,
        default="compare",
        help="with --analysis: compare candidate with stable as the shipped policies do (default), or judge "
        "thresholds alone (error rate, p99)",
    )
    parser.add_argument(
        "--scrape",
        type=float,
        default=SCRAPE_INTERVAL,
        help=f"with --analysis: Prometheus' scrape interval in seconds (default {SCRAPE_INTERVAL:g}; clusters "
        "scrape every 15-30 s, this bench faster to keep runs short)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=WINDOW,
        help=f"with --analysis: the policy's analysis interval in seconds (default {WINDOW:g}); keep it at "
        "least twice --scrape and at most --bake",
    )
    parser.add_argument(
        "--sandbox-gc",
        choices=("tuned", "default"),
        default="tuned",
        help="the sandbox process's cycle collector: tuned as the controller's (rollout.cli.process_tuning), "
        "or CPython's default",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"the controller's reconcile workers (default {DEFAULT_WORKERS}, the controller's own)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="run this many controller replicas, one per shard (`rollout controller --shards N --shard K`)",
    )
    parser.add_argument(
        "--namespaces",
        type=int,
        default=0,
        help="spread the Services over this many namespaces (default: 1, or 60 with --shards)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run each controller under cProfile; its statistics go to DIR/N<size>/controller-K.prof "
        "(read them with `python -m pstats`); the profiler slows the controllers, so the lags are not comparable",
    )
    parser.add_argument(
        "--controller-cpu",
        type=int,
        metavar="K",
        help="give the controller(s) CPU K alone and run the sandbox and Prometheus on the other CPUs, so that "
        "the controller's share of the lag is not the machine's (Linux; needs two CPUs or more)",
    )
    parser.add_argument(
        "--controller-args",
        default="",
        help='more arguments for `rollout controller`, as one string (e.g. "--event-loop asyncio")',
    )
    args = parser.parse_args()
    for flag, value in (("--scrape", args.scrape), ("--window", args.window), ("--bake", args.bake)):
        if value <= 0:
            parser.error(f"{flag}: {value:g} is not a positive number of seconds")
    controller_cpus = _split_cpus(parser, args.controller_cpu)
    if args.sandbox_gc == "tuned":
        tune_gc()
    sizes = [s for s in (args.baseline, args.services) if s > 0]
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    results = []
    for n in sizes:
        t0 = time.monotonic()
        results.append(
            asyncio.run(
                run(
                    n,
                    args.bake,
                    args.timeout,
                    args.analysis,
                    args.rps,
                    judge=args.judge,
                    scrape=args.scrape,
                    window=args.window,
                    tuned_gc=args.sandbox_gc == "tuned",
                    workers=args.workers,
                    controller_args=shlex.split(args.controller_args),
                    shards=max(args.shards, 1),
                    namespaces=args.namespaces or (60 if args.shards > 1 else 1),
                    profiles=_profile_dir(args.profile, n),
                    controller_cpus=controller_cpus,
                )
            )
        )
        print(f"N={n} done in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(table(results))
        print(shard_table(results))
        for r in results:
            print(
                f"writes during the rollouts, N={r.services}: "
                + ", ".join(f"{k} {v}" for k, v in sorted(r.write_breakdown.items()))
            )
        print(
            "\nStep lag by wave (the weight written; due spread: first to last step of the wave falling due)"
        )
        for r in results:
            for wave, v in r.waves.items():
                print(
                    f"  N={r.services:<5} {wave:>4}: p50 {v['p50']:7.3f}s  p99 {v['p99']:7.3f}s  "
                    f"max {v['max']:7.3f}s  due over {v['due_spread']:6.3f}s"
                )
        for r in results:
            if r.analysis_parts:
                print(
                    f"\nThe analysis path in parts, N={r.services} (seconds from the window's end; p50 / p99):"
                )
                for part, v in r.analysis_parts.items():
                    print(f"  {part:<46} {v['p50']:8.3f} {v['p99']:8.3f}")
                print(f"  Prometheus during the rollouts: {r.prometheus}")
        print("\nTargets (issue 5): p99 step lag < 1s, peak RSS < 250 MB.")


if __name__ == "__main__":
    main()
