"""The chart rendered by real Helm under several value sets: every object is valid for a strict API server,
and the controller's pod, RBAC, HA and monitoring objects say what the chart promises."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rollout.api.load import parse
from rollout.api.notifications import NotificationsConfig
from tests.chart.rendering import (
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Obj,
    Values,
    controller,
    crds,
    lint,
    notes,
    only,
    render,
    select,
)
from tests.chart.validation import Invalid, validate, validate_builtin, validate_monitoring

SETS = pytest.mark.parametrize("values", list(VALUE_SETS.values()), ids=list(VALUE_SETS))
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


@SETS
def test_every_object_is_valid(values: Values) -> None:
    objs = render(values)
    assert objs
    for obj in objs:
        validate(obj, crds())


def test_crds_are_valid_objects() -> None:
    kinds = {c["spec"]["names"]["kind"] for c in crds()}
    assert kinds == {"Rollout", "RolloutPolicy", "ClusterMetricSource"}
    for crd in crds():
        validate(crd)


def test_validators_reject_what_a_strict_server_rejects() -> None:
    """The validators themselves can fail: a typo in a built-in kind and in a monitoring kind is caught."""
    deployment = controller(render({})).deployment
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(Invalid, match="readinessprobe"):
        validate_builtin(deployment)
    rule = only(render(VALUE_SETS["observability"]), "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["expresion"] = "up"
    with pytest.raises(Invalid, match="expresion"):
        validate_monitoring(rule)


@SETS
def test_lint_strict_is_clean(values: Values) -> None:
    report = lint(values)
    assert report["errors"] == []
    # severity 2 = warning, 3 = error; strict lint fails on both
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@SETS
def test_objects_live_in_the_release_namespace(values: Values) -> None:
    # Roles live where the controller watches, or where it may read Secrets
    watched = set(values.get("watchNamespaces", [])) | set(values.get("rbac", {}).get("secretNamespaces", []))
    for obj in render(values):
        ns = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert ns is None, obj["metadata"]["name"]
        elif obj["kind"] in {"Role", "RoleBinding"} and ns in watched:
            continue
        else:
            assert ns == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']} in {ns}"


@SETS
def test_pod_is_hardened(values: Values) -> None:
    c = controller(render(values))
    pod, container = c.pod, c.container
    psc, sc = pod["securityContext"], container["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged") is False
    res = container["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]
    # HTTPS when the metrics port serves TLS (metrics.tls), which the kubelet probes without checking
    scheme = {"scheme": "HTTPS"} if values.get("metrics", {}).get("tls") else {}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics", **scheme}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics", **scheme}
    assert 5 <= pod["terminationGracePeriodSeconds"] <= 600
    # the read-only root filesystem gets one writable scratch directory; the rest are read-only Secrets
    signing = ["/etc/knative-rollout/webhook-signing"] if values.get("webhooks") else []
    tls = ["/etc/knative-rollout/metrics-tls"] if values.get("metrics", {}).get("tls") else []
    notify = ["/etc/knative-rollout/notifications"] if values.get("notifications") else []
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp", *signing, *tls, *notify]
    assert all(m.get("readOnly") for m in container["volumeMounts"][1:])
    assert pod["automountServiceAccountToken"] is True  # the controller talks to the API server


@SETS
def test_test_hook_pod_is_hardened_and_reaches_the_metrics_service(values: Values) -> None:
    objs = render(values)
    pod = only(objs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    service = only(objs, "Service")
    port = service["spec"]["ports"][0]["port"]
    scheme = "https" if values.get("metrics", {}).get("tls") else "http"
    url = f"{scheme}://{service['metadata']['name']}.{NAMESPACE}.svc:{port}/readyz"
    assert url in container["args"][0]
    # the hook runs with the controller's own image
    assert container["image"] == controller(objs).container["image"]


def _is_subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return all(big.get(k) == v for k, v in small.items())


@SETS
def test_metrics_service_and_monitor_select_the_controller(values: Values) -> None:
    objs = render(values)
    c = controller(objs)
    pod_labels = c.deployment["spec"]["template"]["metadata"]["labels"]
    assert _is_subset(c.deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = only(objs, "Service")
    assert _is_subset(service["spec"]["selector"], pod_labels)
    container_ports = {p["name"]: p["containerPort"] for p in c.container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in container_ports
    assert f"--metrics-addr=0.0.0.0:{container_ports['http-metrics']}" in c.args
    for monitor in select(objs, "ServiceMonitor"):
        assert _is_subset(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service["spec"]["ports"][0]["name"]]


def test_single_replica_never_runs_two_pods_and_needs_no_election() -> None:
    objs = render({})
    c = controller(objs)
    assert c.deployment["spec"]["replicas"] == 1
    assert c.deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in c.args
    assert select(objs, "PodDisruptionBudget") == []
    assert all("leader" not in r["metadata"]["name"] for r in select(objs, "Role"))


@pytest.mark.parametrize("values", [{"replicas": 3}, {"leaderElection": {"enabled": True}}])
def test_leader_election_with_its_lease_rights(values: Values) -> None:
    objs = render(values)
    c = controller(objs)
    assert "--leader-elect" in c.args
    lease_name = "knative-rollout-controller"
    assert f"--lease-name={lease_name}" in c.args
    # the Lease's namespace is the pod's own (the controller's default, from the downward API), where the
    # Role below grants it
    assert not any(a.startswith("--lease-namespace") for a in c.args)
    assert c.deployment["metadata"]["namespace"] == NAMESPACE
    env = {e["name"]: e for e in c.container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    role = only(objs, "Role", f"{RELEASE}-knative-rollout-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease_name],
            "verbs": ["get", "update"],
        }
    ]
    binding = only(objs, "RoleBinding", f"{RELEASE}-knative-rollout-leader-election")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_shards_run_a_statefulset_with_a_lease_per_shard() -> None:
    from rollout.kube.shards import home_from_pod_name, lease_name

    objs = render({"sharding": {"shards": 3}})
    c = controller(objs)
    assert c.deployment["kind"] == "StatefulSet" and select(objs, "Deployment") == []
    assert c.deployment["spec"]["replicas"] == 3
    assert c.deployment["spec"]["podManagementPolicy"] == "Parallel"
    assert "--shards=3" in c.args and "--leader-elect" in c.args
    assert not any(a.startswith("--shard=") for a in c.args)  # the home shard comes from the pod's name
    env = {e["name"]: e for e in c.container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    name = c.deployment["metadata"]["name"]
    assert [home_from_pod_name(f"{name}-{k}", 3) for k in range(3)] == [0, 1, 2]
    # the Service the StatefulSet names exists (the metrics Service)
    assert c.deployment["spec"]["serviceName"] in {s["metadata"]["name"] for s in select(objs, "Service")}
    role = only(objs, "Role", f"{RELEASE}-knative-rollout-leader-election")
    named = [r for r in role["rules"] if r.get("resourceNames")]
    base = "knative-rollout-controller"
    assert named[0]["resourceNames"] == [lease_name(base, k, 3) for k in range(3)]
    assert only(objs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert "3 shards" in notes({"sharding": {"shards": 3}})
    assert "statefulset/" in notes({"sharding": {"shards": 3}})


def test_ha_has_a_disruption_budget_rolling_updates_and_spread() -> None:
    objs = render({"replicas": 3})
    c = controller(objs)
    assert c.deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pdb = only(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert _is_subset(
        pdb["spec"]["selector"]["matchLabels"], c.deployment["spec"]["template"]["metadata"]["labels"]
    )
    anti = c.pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_namespaced_install_has_roles_only_where_it_watches() -> None:
    objs = render(VALUE_SETS["namespaced"])
    # cluster-wide: only reading the admins' ClusterMetricSources, and not even that when turned off
    (sources,) = select(objs, "ClusterRole")
    assert sources["rules"] == [
        {"apiGroups": ["knrollout.dev"], "resources": ["clustermetricsources"], "verbs": ["list", "watch"]}
    ]
    off = render({**VALUE_SETS["namespaced"], "rbac": {"scope": "namespaced", "clusterMetricSources": False}})
    assert select(off, "ClusterRole") == [] and select(off, "ClusterRoleBinding") == []
    assert "--no-cluster-metric-sources" in controller(off).args
    roles = {r["metadata"]["namespace"] for r in select(objs, "Role")}
    assert roles == {"team-a", "team-b"}
    for binding in select(objs, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-knative-rollout", "namespace": NAMESPACE}
        ]
    args = controller(objs).args
    assert [a for a in args if a.startswith("--namespace=")] == ["--namespace=team-a", "--namespace=team-b"]


def _all_rules(objs: list[Obj]) -> list[dict[str, Any]]:
    return [rule for o in objs if o["kind"] in {"Role", "ClusterRole"} for rule in o["rules"]]


@SETS
def test_no_wildcards_and_no_write_on_what_is_only_read(values: Values) -> None:
    rules = _all_rules(render(values))
    assert rules
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(key, []), rule
        if "nonResourceURLs" in rule:  # the metrics-reader role the admins bind to their scraper
            assert rule == {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
            continue
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["get"]  # never list or watch Secrets
        if set(rule["resources"]) & {"configurations", "rolloutpolicies"}:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
        if "revisions" in rule["resources"]:  # patched for a pre-warm hold only; never created or deleted
            assert set(rule["verbs"]) <= {"get", "list", "watch", "patch"}
    escalation = {"escalate", "bind", "impersonate"}
    assert not any(escalation & set(r["verbs"]) for r in rules)


def _secret_grants(objs: list[Obj]) -> list[tuple[str, str, list[str]]]:
    """(kind, namespace, resourceNames) of every rule that grants Secrets."""
    return [
        (o["kind"], o["metadata"].get("namespace", ""), r.get("resourceNames", []))
        for o in objs
        if o["kind"] in {"Role", "ClusterRole"}
        for r in o["rules"]
        if "secrets" in r["resources"]
    ]


def test_secret_rights_follow_the_value() -> None:
    assert _secret_grants(render({})) == []  # the default: no Secret is readable at all
    assert _secret_grants(render({"rbac": {"readSecrets": True}})) == [("ClusterRole", "", [])]
    scoped = {
        "rbac": {"readSecrets": True, "secretNamespaces": ["monitoring", "team-a"], "secretNames": ["prom"]}
    }
    assert _secret_grants(render(scoped)) == [("Role", "monitoring", ["prom"]), ("Role", "team-a", ["prom"])]


def test_no_rbac_objects_when_rbac_create_is_off() -> None:
    objs = render({"rbac": {"create": False}, "replicas": 2})
    assert _all_rules(objs) == []


def test_metric_source_defaults_reach_the_controller() -> None:
    args = controller(render(VALUE_SETS["all"])).args
    assert "--prometheus-url=https://prometheus.example.com:9090/prom" in args
    assert "--dialect=kourier" in args
    assert "--log-format=console" in args
    assert args[-1] == "--extra-flag"
    no_url = controller(render({"metricSource": {"prometheusUrl": ""}})).args
    assert not any(a.startswith("--prometheus-url") for a in no_url)


def test_image_reference() -> None:
    assert controller(render({})).container["image"] == "knative-rollout:0.1.0"
    assert controller(render({"image": {"tag": "dev"}})).container["image"] == "knative-rollout:dev"
    digest = "sha256:" + "a" * 64
    assert (
        controller(render(VALUE_SETS["all"])).container["image"]
        == f"registry.example.com/knative-rollout@{digest}"
    )


def test_notes_tell_what_to_do_next() -> None:
    text = notes({})
    assert f"helm test {RELEASE} -n {NAMESPACE}" in text
    assert "knrollout.dev/policy=" in text
    # knative-otel without a queue-proxy scrape is called out; with one it is not
    assert "kn_revision_name" in text
    assert "kn_revision_name" not in notes(VALUE_SETS["observability"])
    assert "in: team-a, team-b" in notes(VALUE_SETS["namespaced"])


def test_grants_reach_the_controller_and_the_network_policy_fences_the_pod() -> None:
    default = controller(render({})).args
    assert "--allow-policy-metric-address" not in default
    assert not any(a.startswith("--webhook-allow") for a in default)  # no webhook destination by default
    objs = render(VALUE_SETS["hardened"])
    args = controller(objs).args
    assert "--webhook-allow=*.svc.cluster.local,hooks.example.com,10.20.0.0/16" in args
    assert "--webhook-calls-per-namespace=2" in args
    assert "--webhook-signing-key-file=/etc/knative-rollout/webhook-signing/signing-key" in args
    policies = {p["metadata"]["name"]: p for p in select(objs, "NetworkPolicy")}
    assert set(policies) == {f"{RELEASE}-knative-rollout", f"{RELEASE}-knative-rollout-test"}
    spec = policies[f"{RELEASE}-knative-rollout"]["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ports = [sorted(p["port"] for p in rule["ports"]) for rule in spec["egress"]]
    assert ports == [[53, 53], [443], [9090]]  # DNS, the API server, the granted Prometheus: nothing else
    assert spec["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in ingress[
        "from"
    ]
    assert select(render({}), "NetworkPolicy") == []


def test_notifications_and_tracing_reach_the_controller() -> None:
    assert not any(a.startswith(("--notifications-config", "--otlp")) for a in controller(render({})).args)
    values = {
        "notifications": {
            "destinations": [
                {
                    "name": "chat",
                    "type": "slack",
                    "url": "https://hooks.slack.com/services/T/B/x",
                    "events": ["rolledBack"],
                }
            ],
            "statusUrl": "https://console.example.com/{namespace}/{name}",
            "queue": 200,
        },
        "tracing": {"otlpEndpoint": "http://otel-collector.observability.svc:4318", "sampleRatio": 0.25},
    }
    objs = render(values)
    c = controller(objs)
    assert "--notifications-config=/etc/knative-rollout/notifications/notifications.yaml" in c.args
    assert "--otlp-endpoint=http://otel-collector.observability.svc:4318" in c.args
    assert "--trace-sample-ratio=0.25" in c.args
    (secret,) = [s for s in select(objs, "Secret") if s["metadata"]["name"].endswith("-notifications")]
    config = yaml.safe_load(secret["stringData"]["notifications.yaml"])
    parsed, problems = parse(NotificationsConfig, config)  # what the controller will read at start
    assert parsed is not None, problems
    assert parsed.queue == 200 and parsed.destinations[0].url == "https://hooks.slack.com/services/T/B/x"
    assert parsed.status_url == "https://console.example.com/{namespace}/{name}"
    deployment = select(objs, "Deployment")[0]
    assert "checksum/notifications" in deployment["spec"]["template"]["metadata"]["annotations"]
    own = render({"notifications": {"existingSecret": "platform-notifications"}})
    assert not [s for s in select(own, "Secret") if s["metadata"]["name"].endswith("-notifications")]
    volumes = select(own, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "notifications",
        "secret": {
            "secretName": "platform-notifications",
            "items": [{"key": "notifications.yaml", "path": "notifications.yaml"}],
        },
    } in volumes
