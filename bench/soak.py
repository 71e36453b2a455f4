"""Soak: many rollouts in waves while everything around the controller goes wrong, then an invariant check.

    .venv/bin/python bench/soak.py [--duration 600] [--seed 1] [--services 2] [--json]

The sandbox (API server, Knative simulator, traffic generator) runs in this process with a real Prometheus
(Debian's binary on 127.0.0.1, 1 s scrapes); the controller runs as a separate process (`rollout
controller`). Waves of new revisions, two Services per scenario by default (--services): good, error
regression, latency regression, unready, superseded (a newer revision mid-rollout), manually aborted, and
webhook-gated (a step webhook on 127.0.0.1). Meanwhile, all bounded by the run's duration:
- the controller is SIGKILLed at random moments and started again;
- the API server fails about 10% of requests (500, 503, 429, 409), expires new watches (410) and drops
  watch streams;
- Prometheus is stopped (SIGSTOP) for random spells, some timed to the last seconds of a step;
- the webhook fails (500) or hangs past its timeout on first calls.

The checker (bench/soak_check.py) reads every committed version of every Rollout (the sandbox's commit
log) and every split the sandbox's Knative served, and counts as violations: a served split outside a
rollout's plan, a step advance or promotion not backed by a fresh passing window, a rollout that does not
end in the verdict its scenario deserves (or does not end), a duplicate Rollout. One table is printed; the
exit status is 1 when there is any violation. Traffic goes only to 127.0.0.1; the run stops by itself
(waves stop being started at --duration, then the last ones get up to --drain seconds to finish).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak_check import Report, Served, Version, check_served, check_versions, merge  # noqa: E402
from bench.soak_faults import Injectors, WebhookServer  # noqa: E402
from bench.soak_scenarios import Wave, policies  # noqa: E402
from rollout_lab.sandbox.apiserver import kinds  # noqa: E402
from rollout_lab.sandbox.environment import SandboxOptions, sandbox_environment  # noqa: E402
from tests.integration.harness import ROLLOUTS, Cluster, install_crds, served_split  # noqa: E402


class Recorder:
    """Every committed Rollout version and every served split, from the sandbox's commit listeners."""

    def __init__(self, cluster: Cluster) -> None:
        self.versions: list[Version] = []
        self.served: list[Served] = []
        self._last: dict[str, dict[str, int]] = {}
        cluster.store.on_commit(ROLLOUTS, self._rollout)
        cluster.store.on_commit(kinds.KSERVICES, self._service)

    def _rollout(self, rt: Any, entry: Any) -> None:
        if entry.type != "DELETED":
            self.versions.append(Version(len(self.versions), json.loads(json.dumps(entry.obj))))

    def _service(self, rt: Any, entry: Any) -> None:
        split = served_split(entry.obj)
        if split is None or entry.type == "DELETED":
            return
        percents = split[0]
        if self._last.get(entry.name) != percents:
            self._last[entry.name] = percents
            self.served.append(Served(entry.name, percents))


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    options = SandboxOptions(
        prometheus=True, scrape_interval=1.0, rps=args.rps, ready_delay=0.5, cold_start=0.3, seed=args.seed
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rollout-soak-") as tmp:
        async with sandbox_environment(options) as env, WebhookServer(args.seed) as hooks:
            install_crds(env.store)
            cluster = Cluster(env, env.api.write_kubeconfig(Path(tmp) / "kubeconfig"))
            recorder = Recorder(cluster)
            for name, spec in policies(hooks.url).items():
                cluster.apply_policy(name, spec)
            injectors = Injectors(cluster, Path(args.controller_log), args.seed, hooks)
            wave = Wave(cluster, args.services, args.seed)
            await injectors.start_controller()
            await wave.onboard()
            initial = dict(wave.stable)
            injectors.start(args.duration)
            waves = 0
            while time.monotonic() - started < args.duration:
                await wave.run(deadline=started + args.duration + args.drain)
                waves += 1
            await wave.drain(started + args.duration + args.drain)
            await injectors.stop()
            report = merge(
                check_served(recorder.served, recorder.versions, initial),
                check_versions(recorder.versions, wave.expected),
            )
            return summary(report, injectors, waves, time.monotonic() - started)


def summary(report: Report, injectors: Injectors, waves: int, seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 1),
        "waves": waves,
        "rollouts": sum(report.outcomes.values()),
        "faults": injectors.injected(),
        "outcomes": {f"{s} -> {p}": n for (s, p), n in sorted(report.outcomes.items())},
        "violations": dict(report.by_kind()),
        "violation_details": report.violations[:50],
    }


def print_table(result: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str]] = []
    rows += [("fault", kind, str(n)) for kind, n in result["faults"].items()]
    rows += [("rollouts", label, str(n)) for label, n in result["outcomes"].items()]
    kinds_ = result["violations"] or {"(none)": 0}
    rows += [("violation", kind, str(n)) for kind, n in kinds_.items()]
    width = max(len(r[1]) for r in rows)
    print(f"soak: {result['rollouts']} rollouts in {result['waves']} waves, {result['seconds']} s")
    print(f"{'what':10} {'kind':{width}} count")
    for what, kind, n in rows:
        print(f"{what:10} {kind:{width}} {n:>5}")
    for detail in result["violation_details"]:
        print(f"  {detail}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of waves (default 600)")
    p.add_argument("--drain", type=float, default=120.0, help="seconds the last wave may take to end")
    p.add_argument("--services", type=int, default=2, help="Services per scenario (default 2)")
    p.add_argument("--rps", type=float, default=40.0, help="requests per second per Service")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument(
        "--controller-log",
        default=str(Path(tempfile.gettempdir()) / "rollout-soak-controller.log"),
        help="where the controller processes write their logs (appended)",
    )
    args = p.parse_args(argv)
    if args.duration <= 0 or args.duration > 7200 or args.services < 1 or args.services > 20:
        p.error("--duration must be in (0, 7200] seconds and --services in [1, 20]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(soak(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
