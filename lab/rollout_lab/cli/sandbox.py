"""`rollout sandbox`: a Kubernetes API with Knative Serving and simulated traffic, on this machine.

Starts the sandbox API server, the Knative simulator and the traffic generator (and, with --prometheus, a
local Prometheus scraping it), writes a kubeconfig, prints where everything is, and runs until Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from rollout.api.crd import render_crds
from rollout.cli.argtypes import duration, non_negative_float, port
from rollout.knative.dialects import DIALECTS, Dialect
from rollout_lab.sandbox.apiserver import kinds
from rollout_lab.sandbox.environment import SandboxEnvironment, SandboxOptions, sandbox_environment
from rollout_lab.sandbox.prometheus import PrometheusUnavailable, find_prometheus


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run a local Kubernetes API with Knative and simulated traffic (no cluster needed)",
        description=(
            "Run the sandbox: a Kubernetes API server with Knative Serving's kinds and a Knative simulator, "
            "and a traffic generator whose Prometheus metrics look like Knative's. Point kubectl or the "
            "controller at the kubeconfig it prints. Revision behaviour (errors, latency, failures) is set "
            "with sandbox.knrollout.dev/* annotations on the Service template; see docs/sandbox.md."
        ),
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="write the kubeconfig here (default: a temporary file)"
    )
    parser.add_argument(
        "--port", type=port, default=0, help="API server port on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--metrics-port", type=port, default=0, help="traffic metrics port (default: any free)"
    )
    parser.add_argument(
        "--dialect",
        action="append",
        choices=DIALECTS,
        help="metric dialect(s) to expose; repeat for several (default: knative-classic)",
    )
    parser.add_argument(
        "--rps", type=non_negative_float, default=5.0, help="requests/s per Service (default 5)"
    )
    parser.add_argument(
        "--diurnal-amplitude",
        type=float,
        default=0.0,
        help="relative daily swing of the rate, 0..1 (default 0)",
    )
    parser.add_argument("--domain", default="example.com", help="domain of Route URLs (default example.com)")
    parser.add_argument(
        "--ready-delay", type=duration, default=2.0, help="time until a new revision is Ready (default 2s)"
    )
    parser.add_argument(
        "--cold-start", type=duration, default=1.5, help="time a new pod needs (default 1.5s)"
    )
    parser.add_argument(
        "--tag-header-routing",
        choices=("enabled", "disabled"),
        default="enabled",
        help="Knative's config-features tag-header-based-routing: route requests carrying "
        "Knative-Serving-Tag to that tag's revision (default enabled here; Knative's own default is disabled)",
    )
    parser.add_argument("--seed", type=int, help="random seed for reproducible traffic")
    parser.add_argument("--token", help="require this bearer token (it is written into the kubeconfig)")
    parser.add_argument(
        "--prometheus", action="store_true", help="also run a local Prometheus scraping the metrics"
    )
    parser.add_argument(
        "--prometheus-port", type=port, help="Prometheus port on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--scrape-interval", type=duration, default=5.0, help="Prometheus scrape interval (default 5s)"
    )
    parser.add_argument(
        "--namespace",
        default="demo",
        help="create this namespace and make it the kubeconfig's default (default demo)",
    )
    parser.add_argument(
        "--controller",
        action="store_true",
        help="also run the controller against the sandbox (with the sandbox's Prometheus when --prometheus)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.prometheus:
        try:
            find_prometheus()
        except PrometheusUnavailable as err:
            print(f"rollout sandbox: {err}", file=sys.stderr)
            return 2
    if not 0.0 <= args.diurnal_amplitude <= 1.0:
        print("rollout sandbox: --diurnal-amplitude must be between 0 and 1", file=sys.stderr)
        return 2
    dialects: tuple[Dialect, ...] = tuple(dict.fromkeys(args.dialect or ["knative-classic"]))
    options = SandboxOptions(
        port=args.port,
        metrics_port=args.metrics_port,
        token=args.token,
        domain=args.domain,
        dialects=dialects,
        rps=args.rps,
        diurnal_amplitude=args.diurnal_amplitude,
        ready_delay=args.ready_delay,
        cold_start=args.cold_start,
        seed=args.seed,
        tag_header_routing=args.tag_header_routing == "enabled",
        prometheus=args.prometheus,
        prometheus_port=args.prometheus_port,
        scrape_interval=args.scrape_interval,
    )
    try:
        return asyncio.run(_serve(options, args.kubeconfig, args.namespace, args.controller))
    except OSError as err:  # a port in use, a kubeconfig path that cannot be written
        if err.errno == errno.EADDRINUSE:
            why = "a port is already in use (--port, --metrics-port or --prometheus-port): pick another, or 0"
        else:
            why = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
        print(f"rollout sandbox: {why}", file=sys.stderr)
        return 1


def _install(env: SandboxEnvironment, namespace: str) -> None:
    """What a cluster with knative-rollout installed has: its CRDs, and a namespace to work in."""
    for text in render_crds().values():
        env.store.create(kinds.CRDS, yaml.safe_load(text))
    if env.store.get(kinds.NAMESPACES, None, namespace) is None:
        env.store.create(
            kinds.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )


@contextlib.asynccontextmanager
async def _controller(env: SandboxEnvironment, kubeconfig: Path) -> AsyncIterator[None]:
    from rollout.controller.app import Controller, ControllerConfig, running
    from rollout.controller.egress import Destinations
    from rollout.controller.rollouts import ControllerDefaults
    from rollout.controller.webhooks import WebhookSettings
    from rollout.kube.client import KubeClient

    client = await KubeClient.connect(str(kubeconfig))
    prometheus = env.prometheus.url if env.prometheus is not None else None
    config = ControllerConfig(
        defaults=ControllerDefaults(prometheus_url=prometheus),
        webhooks=WebhookSettings(Destinations.parse(["127.0.0.0/8"])),  # hooks on this machine
    )
    try:
        async with running(Controller(client, config)):
            yield
    finally:
        await client.close()


def _next_steps(kubeconfig: Path) -> list[str]:
    new_revision = (
        "kubectl patch ksvc hello --type merge -p "
        '\'{"spec":{"template":{"metadata":{"annotations":{"sandbox.knrollout.dev/error-rate":"0.3"}}}}}\''
    )
    return [
        f"export KUBECONFIG={kubeconfig}",
        "kubectl apply -f examples/hello/          # a policy and a Service that opts in",
        f"{new_revision}   # a new revision with 30% errors",
        "rollout status hello -w                  # watch it roll out, then back",
    ]


async def _serve(
    options: SandboxOptions, kubeconfig: Path | None, namespace: str, with_controller: bool
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    temporary = None if kubeconfig is not None else Path(tempfile.mkdtemp(prefix="rollout-sandbox-"))
    path = kubeconfig if kubeconfig is not None else (temporary or Path(".")) / "kubeconfig"
    try:
        async with sandbox_environment(options) as env, contextlib.AsyncExitStack() as stack:
            _install(env, namespace)
            written = env.api.write_kubeconfig(path, namespace=namespace)
            print(f"kubeconfig:  {written}")
            print(f"api server:  {env.api.url}")
            print(f"namespace:   {namespace}  (with knative-rollout's CRDs installed)")
            print(f"metrics:     {env.metrics.url}  ({', '.join(options.dialects)})")
            if env.prometheus is not None:
                print(f"prometheus:  {env.prometheus.url}")
            if with_controller:
                await stack.enter_async_context(_controller(env, written))
                where = env.prometheus.url if env.prometheus is not None else "none (analyses hold)"
                print(f"controller:  running here, Prometheus {where}")
                for i, command in enumerate(_next_steps(written)):
                    print(f"{'next:' if i == 0 else '':12} {command}")
            else:
                print(f"try:         KUBECONFIG={written} kubectl get ksvc -A")
            print("running; Ctrl-C stops", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    print("sandbox stopped", flush=True)
    return 0
