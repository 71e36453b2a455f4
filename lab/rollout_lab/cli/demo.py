"""`rollout demo`: the README's first command. See lab/rollout_lab/demo/run.py."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from rollout.cli.argtypes import positive_float
from rollout.logging import configure_logging
from rollout_lab.demo.run import DemoOptions, run_demo


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="roll out a good and a bad revision on the embedded sandbox (no cluster needed)",
        description=(
            "Start the sandbox (Kubernetes API, Knative simulator, traffic), a local Prometheus when the "
            "`prometheus` binary is installed, and the controller; roll out a healthy revision (promoted) and a "
            "broken one (rolled back automatically), live. Finishes in about 80 seconds."
        ),
    )
    parser.add_argument(
        "--no-prometheus", action="store_true", help="read metrics directly, without Prometheus"
    )
    parser.add_argument(
        "--rps", type=positive_float, default=60.0, help="requests per second to the Service (default 60)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the simulated traffic")
    parser.add_argument("--kubeconfig", type=Path, help="also write the sandbox's kubeconfig here")
    parser.add_argument("--log-level", default="error", help="controller log level (default error)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    configure_logging("console", args.log_level)
    options = DemoOptions(
        prometheus=not args.no_prometheus, rps=args.rps, seed=args.seed, keep_kubeconfig=args.kubeconfig
    )
    try:
        return asyncio.run(run_demo(options, sys.stdout))
    except TimeoutError as exc:
        print(f"rollout demo: {exc}", file=sys.stderr)
        return 1
