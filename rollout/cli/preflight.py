"""What `rollout controller` checks before it starts, so that a mistake in its setup is one line naming the
problem and the fix, and a non-zero exit, instead of a traceback or a watch failing in a loop: the flags'
values, the cluster configuration, that the API server answers and serves our CRDs (and lets us list
them), that the metrics address is free; a Prometheus that does not answer is only reported (analyses hold
until it does)."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
from urllib.parse import urlsplit

import aiohttp
import structlog
import yaml

from rollout import __version__
from rollout.cli.kubeaccess import CliError, first_line
from rollout.kube.client import KubeClient, KubeError
from rollout.kube.resources import POLICIES, ROLLOUTS

log = structlog.get_logger(__name__)

INSTALL_CRDS = "rollout crds | kubectl apply -f - (or install the Helm chart)"


class StartupError(CliError):
    """A setup problem of the controller, reported in one line (exit code 1)."""


def http_url(text: str) -> str:
    """argparse type of a URL flag: http(s)://host[:port][/path]."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL with a host; write e.g. http://prometheus.monitoring:9090"
        )
    if port == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: port 0 is not a port to connect to")
    return text.rstrip("/")


async def connect(kubeconfig: str | None, context: str | None, identity: str = "") -> KubeClient:
    """A client from --kubeconfig (or KUBECONFIG/~/.kube/config, else the pod's service account). With
    `identity` (a controller replica's), its User-Agent names it, so the API server's audit log tells the
    replicas' writes apart."""
    # the library logs "Config not found" before falling back to the pod's service account: not news
    logging.getLogger("kubernetes_asyncio.config.kube_config").setLevel(logging.ERROR)
    agent = f"knative-rollout/{__version__}" + (f" ({identity})" if identity else "")
    try:
        return await KubeClient.connect(kubeconfig, context=context, user_agent=agent)
    except FileNotFoundError:
        raise StartupError(f"--kubeconfig {kubeconfig}: no such file") from None
    except yaml.YAMLError as err:
        raise StartupError(f"--kubeconfig {kubeconfig}: not a YAML kubeconfig ({first_line(err)})") from None
    except Exception as err:  # kubernetes-asyncio's ConfigException and the library's own errors
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "no kubeconfig and not in a pod"
        raise StartupError(
            f"cannot load a cluster configuration ({where}): {first_line(err)}; pass --kubeconfig FILE, "
            "set KUBECONFIG, or run in a pod with a service account"
        ) from None


async def check_cluster(client: KubeClient, namespaces: tuple[str, ...]) -> None:
    """The API server answers, serves knrollout.dev's CRDs, and lets us list them where we watch."""
    for namespace in namespaces or (None,):
        for resource in (ROLLOUTS, POLICIES):
            try:
                await client.probe(resource, namespace)
            except KubeError as err:
                raise StartupError(_cluster_problem(err, resource.plural, namespace)) from None


def _cluster_problem(err: KubeError, plural: str, namespace: str | None) -> str:
    where = f"in namespace {namespace}" if namespace else "cluster-wide"
    if err.status == 0:
        return f"cannot reach the API server: {err.message[:200]}; check --kubeconfig/--context"
    if err.status == 404:
        return f"the API server does not serve {plural}.knrollout.dev/v1alpha1: install the CRDs with {INSTALL_CRDS}"
    if err.status in (401, 403):
        return (
            f"the API server refuses to let this controller list {plural} {where} ({err.status} "
            f"{err.reason}); grant the chart's ClusterRole, or pass --namespace for the namespaces it may use"
        )
    return f"the API server answered {err.status} {err.reason} listing {plural} {where}: {err.message[:200]}"


def check_port_free(host: str, port: int) -> None:
    """The metrics address can be bound (port 0 always can)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise StartupError(f"--metrics-addr {host}:{port}: unknown host ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            why = "already in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
            raise StartupError(
                f"--metrics-addr {host}:{port}: {why}; pick another port (0: any free one)"
            ) from None


async def report_prometheus(url: str | None, within: float = 5.0) -> None:
    """Log whether the default Prometheus answers; analyses hold while it does not, so this only warns."""
    if url is None:
        log.warning(
            "no --prometheus-url: only policies with a ClusterMetricSource or their own address can be analysed"
        )
        return
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session,
            session.get(f"{url}/api/v1/status/buildinfo", allow_redirects=False) as response,
        ):
            ok = response.status == 200
            detail = f"answered {response.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        ok, detail = False, first_line(err) or type(err).__name__
    if ok:
        log.info("prometheus answers", url=url)
    else:
        log.warning("prometheus does not answer; analyses hold until it does", url=url, detail=detail)
