"""`rollout controller`: run the controller against a cluster (in-cluster config, or any kubeconfig — the
sandbox's included). SIGTERM/SIGINT stop it gracefully: no new work, the running reconcile finishes, the
lease is released."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
import yaml

from rollout import tracing
from rollout.api.load import parse
from rollout.api.notifications import NotificationsConfig
from rollout.api.source import Dialect
from rollout.cli.argtypes import address, duration, positive_int, ratio
from rollout.cli.kubeaccess import CliError, check_kubeconfig
from rollout.cli.preflight import (
    StartupError,
    check_cluster,
    check_port_free,
    connect,
    http_url,
    report_prometheus,
)
from rollout.cli.process_tuning import freeze_startup, hold_mmap_threshold, tune_gc
from rollout.controller.app import DEFAULT_WORKERS, Controller, ControllerConfig
from rollout.controller.egress import Destinations
from rollout.controller.rollouts import ControllerDefaults
from rollout.controller.webhooks import WebhookSettings
from rollout.kube.informer import InformerSettings
from rollout.kube.leader import LeaseSettings, default_identity
from rollout.kube.shards import home_from_pod_name
from rollout.logging import configure_logging

log = structlog.get_logger(__name__)

# How long the start-up checks wait for the API server (its client retries transient errors meanwhile).
STARTUP_TIMEOUT = 30.0


def _destinations(text: str) -> Destinations:
    try:
        return Destinations.parse(text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def webhook_settings(args: argparse.Namespace) -> WebhookSettings:
    """The admins' webhook settings. Raises ValueError naming the flag when the signing key is unusable."""
    allowed = Destinations(
        tuple(h for d in args.webhook_allow for h in d.hosts),
        tuple(n for d in args.webhook_allow for n in d.networks),
    )
    key: bytes | None = None
    if args.webhook_signing_key_file:
        try:
            key = Path(args.webhook_signing_key_file).read_bytes().strip()
        except OSError as err:
            raise ValueError(
                f"--webhook-signing-key-file: cannot read {args.webhook_signing_key_file}: "
                f"{err.strerror or err}"
            ) from None
        if len(key) < 16:
            raise ValueError("--webhook-signing-key-file: the key is shorter than 16 bytes; use a random one")
    return WebhookSettings(allowed, key, per_namespace=args.webhook_calls_per_namespace)


def notifications_config(path: str | None) -> NotificationsConfig:
    """The admins' notification destinations (a YAML file, mounted from a Secret: it holds Slack and Teams
    URLs). Raises ValueError naming the flag, the field and the fix."""
    if not path:
        return NotificationsConfig()
    flag = "--notifications-config"
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ValueError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{flag}: {path} is not YAML: {str(exc).splitlines()[0]}") from None
    config, problems = parse(NotificationsConfig, data)
    if config is None:
        raise ValueError(f"{flag}: {path}: {problems[0]}")
    return config


def metrics_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server context for --metrics-tls-cert/--metrics-tls-key (both or neither). Raises ValueError
    naming the flag when the files are unusable."""
    cert, key = args.metrics_tls_cert, args.metrics_tls_key
    if not cert and not key:
        return None
    if not cert or not key:
        missing = "--metrics-tls-key" if cert else "--metrics-tls-cert"
        raise ValueError(f"{missing}: give the certificate and its key together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        why = getattr(err, "strerror", None) or getattr(err, "reason", None) or str(err)
        raise ValueError(
            f"--metrics-tls-cert/--metrics-tls-key: cannot load {cert} and {key}: {why}"
        ) from None
    return context


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "controller",
        help="run the controller (watches opted-in Knative Services and rolls them out)",
        description=(
            "Watch Knative Services and standalone Routes labelled knrollout.dev/policy=<policy> and carry each "
            "new revision through its RolloutPolicy: pin traffic, step it to the candidate, analyse, promote or "
            "roll back. Uses the pod's service account in a cluster, or --kubeconfig (e.g. the sandbox's)."
        ),
    )
    p.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster config, else KUBECONFIG/~/.kube/config)"
    )
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeat for several; default: all namespaces)",
    )
    p.add_argument(
        "--metrics-addr",
        type=address,
        default=("0.0.0.0", 8080),
        metavar="HOST:PORT",
        help="serve /metrics, /healthz and /readyz here (default 0.0.0.0:8080; port 0: any free)",
    )
    p.add_argument(
        "--metrics-auth",
        choices=["none", "kubernetes"],
        default="none",
        help="who may read /metrics: anyone who reaches the port (none, the default), or callers whose "
        "bearer token the API server knows and whose identity may get the URL /metrics (kubernetes: "
        "TokenReview and SubjectAccessReview); /healthz and /readyz stay open for the kubelet",
    )
    p.add_argument(
        "--metrics-tls-cert", metavar="PATH", help="serve the metrics port over HTTPS with this certificate"
    )
    p.add_argument("--metrics-tls-key", metavar="PATH", help="the private key of --metrics-tls-cert")
    p.add_argument("--leader-elect", action="store_true", help="elect a leader among replicas with a Lease")
    p.add_argument("--lease-name", default="knative-rollout-controller", help="name of the Lease")
    p.add_argument(
        "--lease-namespace",
        help="namespace of the Lease (default: the pod's own, from env POD_NAMESPACE; else the first "
        "--namespace, else default)",
    )
    p.add_argument("--lease-duration", type=duration, default=15.0, help="lease duration (default 15s)")
    p.add_argument("--renew-deadline", type=duration, default=10.0, help="renew deadline (default 10s)")
    p.add_argument("--retry-period", type=duration, default=2.0, help="lease retry period (default 2s)")
    p.add_argument(
        "--identity", default="", help="this replica's identity in the Lease (default: host_random)"
    )
    p.add_argument(
        "--shards",
        type=positive_int,
        default=1,
        metavar="N",
        help="split the namespaces among N shards, each with its own Lease (<lease-name>-shard-K); each "
        "replica owns its home shard and takes over a shard whose replica stopped (implies --leader-elect; "
        "default 1)",
    )
    p.add_argument(
        "--shard",
        type=int,
        metavar="K",
        help="with --shards: this replica's home shard, 0 to N-1 (default: the ordinal at the end of the "
        "pod's name, env POD_NAME, as a StatefulSet names its pods)",
    )
    p.add_argument(
        "--prometheus-url",
        type=http_url,
        help="Prometheus for policies that leave metricSource.prometheus.address unset",
    )
    p.add_argument(
        "--allow-policy-metric-address",
        action="store_true",
        help="let RolloutPolicies name their own Prometheus (metricSource.prometheus.address), with "
        "credentials only from Secrets of their namespace labelled knrollout.dev/metric-credentials=true "
        "(default: off; policies use the controller's Prometheus or a ClusterMetricSource)",
    )
    p.add_argument(
        "--no-cluster-metric-sources",
        dest="cluster_metric_sources",
        action="store_false",
        help="do not read ClusterMetricSources (for installs without the right to list them cluster-wide)",
    )
    p.add_argument(
        "--webhook-allow",
        action="append",
        default=[],
        type=_destinations,
        metavar="DEST[,DEST...]",
        help="destinations policies' webhooks may call: hosts, *.suffix patterns, networks (repeatable; "
        "default: none). Loopback, link-local and metadata addresses are refused unless a network names them",
    )
    p.add_argument(
        "--webhook-signing-key-file",
        metavar="PATH",
        help="sign every webhook body with the key in this file (HMAC-SHA256, header X-Rollout-Signature); "
        "mount it from a Secret",
    )
    p.add_argument(
        "--webhook-calls-per-namespace",
        type=positive_int,
        default=4,
        metavar="N",
        help="webhook calls of one namespace running at once (default 4)",
    )
    p.add_argument(
        "--notifications-config",
        metavar="PATH",
        help="controller-wide notification destinations (Slack, Teams, webhook, CloudEvents), a status link "
        "template and the queue's bounds, as YAML; mount it from a Secret (docs/notifications.md)",
    )
    p.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send OpenTelemetry traces (a span per reconcile and decision, with the Prometheus queries and "
        "Kubernetes writes beneath) to this OTLP/HTTP collector, e.g. http://otel-collector:4318 (default: off)",
    )
    p.add_argument(
        "--trace-sample-ratio",
        type=ratio,
        default=1.0,
        metavar="R",
        help="with --otlp-endpoint: the share of traces kept, 0 to 1 (default 1)",
    )
    p.add_argument(
        "--dialect",
        choices=[d.value for d in Dialect],
        default=Dialect.KNATIVE_CLASSIC.value,
        help="metric dialect for policies that leave metricSource.dialect unset (default knative-classic)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        help=f"concurrent reconciles (default {DEFAULT_WORKERS})",
    )
    p.add_argument(
        "--resync", type=duration, default=300.0, help="re-reconcile everything this often (default 5m)"
    )
    p.add_argument(
        "--analysis-settle",
        type=duration,
        default=1.0,
        help="wait this long after an analysis window ends before querying it (default 1s)",
    )
    p.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="json (default when not a terminal) or console",
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning, error (default info)")
    p.set_defaults(func=run)


def lease_namespace(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """Where the Lease lives: --lease-namespace; else the pod's namespace (POD_NAMESPACE, which the Helm
    chart sets from the downward API: the Lease lives beside the controller, where the chart grants it);
    else the first watched namespace; else `default`."""
    namespaces = list(args.namespace)
    return str(
        args.lease_namespace or env.get("POD_NAMESPACE") or (namespaces[0] if namespaces else "default")
    )


def shard_home(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """This replica's home shard: --shard, else the ordinal of a StatefulSet pod's name."""
    if args.shards <= 1:
        return 0
    if args.shard is not None:
        if not 0 <= args.shard < args.shards:
            raise ValueError(
                f"--shard: {args.shard} is not a shard of --shards {args.shards}; use 0 to {args.shards - 1}"
            )
        return int(args.shard)
    home = home_from_pod_name(env.get("POD_NAME", ""), args.shards)
    if home is None:
        raise ValueError(
            "--shards: no home shard for this replica; pass --shard K, or run it as a StatefulSet pod "
            "(env POD_NAME ending in its ordinal)"
        )
    return home


def config_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ControllerConfig:
    namespaces = tuple(args.namespace)
    host, port = args.metrics_addr
    lease = LeaseSettings(
        name=args.lease_name,
        namespace=lease_namespace(args, os.environ if env is None else env),
        identity=args.identity,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )
    return ControllerConfig(
        namespaces=namespaces,
        workers=max(args.workers, 1),
        leader_elect=args.leader_elect or args.shards > 1,
        lease=lease,
        shards=args.shards,
        shard_home=shard_home(args, os.environ if env is None else env),
        defaults=ControllerDefaults(
            prometheus_url=args.prometheus_url,
            dialect=Dialect(args.dialect),
            allow_policy_metric_address=args.allow_policy_metric_address,
        ),
        metrics_host=host,
        metrics_port=port,
        metrics_auth=args.metrics_auth == "kubernetes",
        metrics_tls=metrics_tls(args),
        informer=InformerSettings(resync=args.resync),
        analysis_settle=args.analysis_settle,
        identity=args.identity,
        webhooks=webhook_settings(args),
        notifications=notifications_config(args.notifications_config),
        cluster_sources=args.cluster_metric_sources,
    )


async def serve(args: argparse.Namespace, config: ControllerConfig) -> int:
    if config.metrics_port is not None:
        check_port_free(config.metrics_host, config.metrics_port)
    if config.metrics_auth and config.metrics_tls is None:
        log.warning(
            "metrics auth without TLS: scrapers' tokens cross the network in clear text",
            fix="set --metrics-tls-cert and --metrics-tls-key (the chart: metrics.tls.secretName)",
        )
    config = replace(config, identity=config.identity or default_identity())
    client = await connect(args.kubeconfig, args.context, config.identity)
    try:
        await asyncio.wait_for(check_cluster(client, config.namespaces), timeout=STARTUP_TIMEOUT)
    except TimeoutError:
        await client.close()
        raise StartupError(f"the API server did not answer within {STARTUP_TIMEOUT:.0f} s") from None
    except StartupError:
        await client.close()
        raise
    prometheus = asyncio.create_task(report_prometheus(config.defaults.prometheus_url))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        controller = Controller(client, config)
        freeze = asyncio.create_task(_freeze_when_started(controller))
        try:
            await controller.run(stop)
        finally:
            freeze.cancel()
    finally:
        prometheus.cancel()
        await client.close()
    return 0


async def _freeze_when_started(controller: Controller) -> None:
    """Once the caches have synced, hide what start-up built from the cycle collector (process_tuning)."""
    await controller.started.wait()
    log.info("start-up objects frozen for the cycle collector", objects=freeze_startup())


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, args.log_level)
    # this process is the controller's own: tune its allocator and cycle collector (rollout.cli.process_tuning)
    hold_mmap_threshold()
    tune_gc()
    try:
        config = config_from(args)
    except ValueError as err:
        print(f"rollout controller: {err}", file=sys.stderr)
        return 2
    provider = None
    if args.otlp_endpoint and not args.otlp_endpoint.startswith(("http://", "https://")):
        print(
            f"rollout controller: --otlp-endpoint: expected an http(s) URL of an OTLP/HTTP collector "
            f"(e.g. http://otel-collector:4318), got {args.otlp_endpoint!r}",
            file=sys.stderr,
        )
        return 2
    if args.otlp_endpoint:
        provider = tracing.otlp_provider(args.otlp_endpoint, sample_ratio=args.trace_sample_ratio)
        tracing.install(provider)
    try:
        check_kubeconfig(args.kubeconfig)
        return asyncio.run(serve(args, config))
    except CliError as err:  # StartupError, and a kubeconfig that is not there
        print(f"rollout controller: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # e.g. inconsistent lease timings
        log.error("invalid settings", error=str(err))
        return 2
    finally:
        if provider is not None:
            provider.shutdown()  # the spans still batched go out before the process ends
