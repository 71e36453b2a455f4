"""Render and lint the chart with real Helm (the helm-python-sdk wheel: Helm's Go SDK, no helm binary) and
read what comes out as Kubernetes objects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "knative-rollout"
RELEASE = "kr"
NAMESPACE = "knative-rollout"
# The Kubernetes version objects are validated against (kubernetes-validate) and Helm lints for.
KUBE_VERSION = "1.34.0"

Obj = dict[str, Any]
Values = Mapping[str, Any]

OBSERVABILITY: Values = {
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "queueProxyMonitor": {"enabled": True, "namespaces": ["team-a", "team-b"]},
    "queueProxyScrapeConfig": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
}

# The value sets every structural test runs over.
VALUE_SETS: dict[str, Values] = {
    "default": {},
    "namespaced": {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["team-a", "team-b"]},
    "ha": {"replicas": 3},
    "sharded": {"sharding": {"shards": 3}},
    "hardened": {
        "rbac": {
            "readSecrets": True,
            "secretNamespaces": ["monitoring"],
            "secretNames": ["prometheus-reader"],
        },
        "webhooks": {
            "allowedDestinations": ["*.svc.cluster.local", "hooks.example.com", "10.20.0.0/16"],
            "signingSecret": {"name": "rollout-webhook-key", "key": "signing-key"},
            "callsPerNamespace": 2,
        },
        "networkPolicy": {
            "enabled": True,
            "apiServer": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
            "egress": [
                {
                    "to": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                    ],
                    "ports": [{"port": 9090, "protocol": "TCP"}],
                }
            ],
        },
        "image": {"digest": "sha256:" + "b" * 64},
        "metrics": {"auth": {"enabled": True}, "tls": {"secretName": "knative-rollout-metrics-tls"}},
    },
    "observability": OBSERVABILITY,
    "all": {
        **OBSERVABILITY,
        "replicas": 2,
        "rbac": {"scope": "namespaced", "readSecrets": False},
        "watchNamespaces": ["team-a"],
        "image": {"repository": "registry.example.com/knative-rollout", "digest": "sha256:" + "a" * 64},
        "metricSource": {"prometheusUrl": "https://prometheus.example.com:9090/prom", "dialect": "kourier"},
        "controller": {"logFormat": "console", "extraArgs": ["--extra-flag"]},
        "metrics": {
            "auth": {
                "enabled": True,
                "readers": [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"}],
            },
            "tls": {"secretName": "knative-rollout-metrics-tls"},
        },
        "serviceMonitor": {
            **OBSERVABILITY["serviceMonitor"],
            "tlsConfig": {"serverName": "kr-knative-rollout-metrics.knative-rollout.svc"},
        },
        "notifications": {
            "destinations": [
                {"name": "broker", "type": "cloudEvents", "url": "http://broker.example/ns/default"}
            ]
        },
        "tracing": {"otlpEndpoint": "http://otel-collector.observability.svc:4318"},
    },
}


@cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART_DIR)


def render_files(values: Values, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, exactly as `helm template` would produce it."""
    return chart().render(dict(values), name=RELEASE, namespace=namespace, is_install=True)


def documents(text: str) -> Iterator[Obj]:
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def render(values: Values, *, hooks: bool = True) -> list[Obj]:
    """The objects a release would create from `templates/` (CRDs not included; see crds())."""
    objs: list[Obj] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in documents(text):
            if not hooks and "helm.sh/hook" in doc.get("metadata", {}).get("annotations", {}):
                continue
            objs.append(doc)
    return objs


def notes(values: Values) -> str:
    return render_files(values)[f"{CHART_DIR.name}/templates/NOTES.txt"]


def crds() -> list[Obj]:
    """The CRDs Helm installs from `crds/`."""
    return [doc for entry in chart().crds for doc in documents(entry["data"])]


def lint(values: Values) -> dict[str, Any]:
    report: dict[str, Any] = helm.lint(CHART_DIR, dict(values), strict=True, kube_version=f"v{KUBE_VERSION}")
    return report


def only(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = select(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def select(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


@dataclass(frozen=True)
class Controller:
    """The parts of the rendered Deployment tests look at."""

    deployment: Obj

    @property
    def pod(self) -> Obj:
        spec: Obj = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> Obj:
        containers: list[Obj] = self.pod["containers"]
        assert len(containers) == 1
        return containers[0]

    @property
    def args(self) -> list[str]:
        args: list[str] = self.container.get("args", [])
        return args


def controller(objs: list[Obj]) -> Controller:
    """The controller's workload: a Deployment, or a StatefulSet when sharded."""
    found = select(objs, "Deployment") + select(objs, "StatefulSet")
    assert len(found) == 1, f"expected one controller workload, found {len(found)}"
    return Controller(found[0])
