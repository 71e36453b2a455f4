"""The chart's monitoring objects checked by Prometheus' own tool: the PrometheusRule passes `promtool check
rules` and its alerts fire (and stay quiet) on synthetic series under `promtool test rules`; the queue-proxy
scrape job passes `promtool check config`; every dashboard query parses; and the labels the queue-proxy scrape
adds are the ones the knative-otel dialect groups by."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import promtool
from tests.chart.rendering import CHART_DIR, NAMESPACE, RELEASE, VALUE_SETS, Obj, only, render

ROOT = CHART_DIR.parents[1]
OBS = VALUE_SETS["observability"]
JOB = f"{RELEASE}-knative-rollout-metrics"


def _rule_groups() -> list[Obj]:
    groups: list[Obj] = only(render(OBS), "PrometheusRule")["spec"]["groups"]
    return groups


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    path = promtool.write_rules(tmp_path, _rule_groups())
    result = promtool.run(["check", "rules", str(path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 rules found" in result.stdout


def test_alerts_can_be_turned_off_one_by_one() -> None:
    values = {**OBS, "prometheusRule": {"enabled": True, "rolloutStuck": {"enabled": False}}}
    rules = only(render(values), "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [
        "KnativeRolloutFailed",
        "KnativeRolloutControllerDown",
        "KnativeRolloutReconcileErrors",
        "KnativeRolloutPrewarmFailing",
    ]


STUCK = 'namespace="shop", target="cart", rollout="cart-00002.1"'
CART = 'namespace="shop", target="cart"'
WEB = 'namespace="shop", target="web"'
MOVING = 'namespace="shop", target="api", rollout="api-00009.1"'
UNAPPLIED = 'namespace="shop", target="web", rollout="web-00003.1"'


def _labels(selector: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', selector))


def _alert(labels: dict[str, str], summary: str) -> dict[str, Any]:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary}}


def test_alerts_fire_on_the_right_series(tmp_path: Path) -> None:
    """promtool's rule unit tests: each alert fires on the series it is about, after its `for`, and not on
    healthy series."""
    groups = _rule_groups()
    for rule in groups[0]["rules"]:
        rule["annotations"] = {"summary": rule["annotations"]["summary"]}  # descriptions are prose
    promtool.write_rules(tmp_path, groups)
    up = f'up{{job="{JOB}", namespace="{NAMESPACE}"}}'
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # a rollback of shop/cart at minute 3 (its series existed: a Hold, say, was counted
                    # for it first) and a promotion at minute 4
                    {
                        "series": f'knrollout_decisions_total{{{CART}, outcome="RegressionDetected"}}',
                        "values": "0 0 0 1x30",
                    },
                    {
                        "series": f'knrollout_decisions_total{{{CART}, outcome="Promoted"}}',
                        "values": "0 0 0 0 1x30",
                    },
                    # shop/web's first decision ever is a failure at minute 2: its series starts at 1
                    {
                        "series": f'knrollout_decisions_total{{{WEB}, outcome="CandidateFailed"}}',
                        "values": "_x2 1x40",
                    },
                    # a rollout past its deadline (minute 60) that keeps running; one that moves on time
                    {
                        "series": f"knrollout_rollout_deadline_timestamp_seconds{{{STUCK}}}",
                        "values": "3600x200",
                    },
                    {"series": f"knrollout_rollout_traffic_applied{{{STUCK}}}", "values": "1x200"},
                    {
                        "series": f"knrollout_rollout_deadline_timestamp_seconds{{{MOVING}}}",
                        "values": "36000x200",
                    },
                    {"series": f"knrollout_rollout_traffic_applied{{{MOVING}}}", "values": "1x200"},
                    # a rollout whose planned split Knative does not serve from minute 10
                    {
                        "series": f"knrollout_rollout_deadline_timestamp_seconds{{{UNAPPLIED}}}",
                        "values": "36000x200",
                    },
                    {"series": f"knrollout_rollout_traffic_applied{{{UNAPPLIED}}}", "values": "1x10 0x190"},
                    # the controller answers for 10 minutes, then stops
                    {"series": up, "values": "1x10 0x190"},
                    # 12 reconcile errors a minute (0.2/s) from the start
                    {
                        "series": 'knrollout_reconcile_errors_total{kind="Service", error="KubeError"}',
                        "values": "0+12x200",
                    },
                    # pre-warm writes: held ones always, failed ones from minute 30 (3 a minute)
                    {"series": 'knrollout_prewarm_writes_total{outcome="held"}', "values": "0+2x200"},
                    {"series": 'knrollout_prewarm_writes_total{outcome="failed"}', "values": "0x30 0+3x170"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "KnativeRolloutFailed",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning", **_labels(CART), "outcome": "RegressionDetected"},
                                "A rollout of shop/cart ended: RegressionDetected",
                            ),
                            _alert(
                                {"severity": "warning", **_labels(WEB), "outcome": "CandidateFailed"},
                                "A rollout of shop/web ended: CandidateFailed",
                            ),
                        ],
                    },
                    {"eval_time": "25m", "alertname": "KnativeRolloutFailed", "exp_alerts": []},
                    # not applied since minute 10, held by `for: 15m` until minute 25
                    {"eval_time": "20m", "alertname": "KnativeRolloutStuck", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "KnativeRolloutStuck",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning", **_labels(UNAPPLIED)},
                                "Rollout shop/web-00003.1 is stuck",
                            )
                        ],
                    },
                    # past its deadline (minute 60), held by `for: 15m`: not at minute 70, at minute 80;
                    # never the one on time
                    {
                        "eval_time": "70m",
                        "alertname": "KnativeRolloutStuck",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning", **_labels(UNAPPLIED)},
                                "Rollout shop/web-00003.1 is stuck",
                            )
                        ],
                    },
                    {
                        "eval_time": "80m",
                        "alertname": "KnativeRolloutStuck",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning", **_labels(STUCK)},
                                "Rollout shop/cart-00002.1 is stuck",
                            ),
                            _alert(
                                {"severity": "warning", **_labels(UNAPPLIED)},
                                "Rollout shop/web-00003.1 is stuck",
                            ),
                        ],
                    },
                    {"eval_time": "9m", "alertname": "KnativeRolloutControllerDown", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "KnativeRolloutControllerDown",
                        "exp_alerts": [
                            _alert(
                                {"severity": "critical", "namespace": NAMESPACE},
                                "knative-rollout controller is down",
                            )
                        ],
                    },
                    {"eval_time": "10m", "alertname": "KnativeRolloutReconcileErrors", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "KnativeRolloutReconcileErrors",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning", "kind": "Service"},
                                "knative-rollout reconciles keep failing",
                            )
                        ],
                    },
                    # failing from minute 30, held by `for: 15m`: not at 40, at 50
                    {"eval_time": "40m", "alertname": "KnativeRolloutPrewarmFailing", "exp_alerts": []},
                    {
                        "eval_time": "50m",
                        "alertname": "KnativeRolloutPrewarmFailing",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning"},
                                "knative-rollout cannot write pre-warm min-scales on Revisions",
                            )
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool.run(["test", "rules", "tests.yaml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _scrape_job() -> Obj:
    config_map = only(render(OBS), "ConfigMap", f"{RELEASE}-knative-rollout-queue-proxy-scrape")
    jobs: list[Obj] = yaml.safe_load(config_map["data"]["queue-proxy-scrape.yaml"])
    assert len(jobs) == 1
    return jobs[0]


def _as_static(job: Obj, targets: list[Obj]) -> Obj:
    """The job with Kubernetes discovery replaced by static targets carrying the `__meta_kubernetes_*` labels
    discovery would set. (Debian builds Prometheus without Kubernetes discovery, so promtool cannot parse
    kubernetes_sd_configs; everything else of the job is checked as rendered.)"""
    static = {k: v for k, v in job.items() if k != "kubernetes_sd_configs"}
    static["static_configs"] = targets
    return static


def test_scrape_config_passes_promtool_check(tmp_path: Path) -> None:
    job = _scrape_job()
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["team-a", "team-b"]}}]
    config = {
        "global": {"scrape_interval": "15s"},
        "scrape_configs": [_as_static(job, [{"targets": ["x:1"]}])],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = promtool.run(["check", "config", "prometheus.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


QUEUE_PROXY_METRICS = """\
# TYPE kn_serving_invocation_duration_seconds_count counter
kn_serving_invocation_duration_seconds_count{http_response_status_code="200"} 40
kn_serving_invocation_duration_seconds_count{http_response_status_code="500"} 2
"""


def test_real_prometheus_scrapes_queue_proxy_with_revision_labels(tmp_path: Path) -> None:
    """Prometheus runs the rendered job: the queue-proxy port of a revision pod is scraped and its series get
    the revision and namespace labels; the user container's port and a pod of no revision are dropped.
    (That these are the labels the knative-otel dialect reads is the next test's business.)"""
    added = _targets(_scrape_job()["relabel_configs"], "source_labels", "target_label")
    revision_label = added["__meta_kubernetes_pod_label_serving_knative_dev_revision"]
    namespace_label = added["__meta_kubernetes_namespace"]
    pod = {
        "__meta_kubernetes_namespace": "shop",
        "__meta_kubernetes_pod_name": "cart-00002-deployment-7d9f-x2x",
        "__meta_kubernetes_pod_label_serving_knative_dev_revision": "cart-00002",
    }
    with promtool.exporter(QUEUE_PROXY_METRICS) as address:
        targets = [
            {
                "targets": [address],
                "labels": {**pod, "__meta_kubernetes_pod_container_port_name": "http-usermetric"},
            },
            {
                "targets": [address],
                "labels": {**pod, "__meta_kubernetes_pod_container_port_name": "user-port"},
            },
            {
                "targets": [address],
                "labels": {
                    "__meta_kubernetes_namespace": "knative-serving",
                    "__meta_kubernetes_pod_name": "activator-5d8c-abc",
                    "__meta_kubernetes_pod_container_port_name": "http-usermetric",
                },
            },
        ]
        job = {**_as_static(_scrape_job(), targets), "scrape_interval": "1s"}
        with promtool.running({"scrape_configs": [job]}, tmp_path) as url:
            rows = promtool.query_until(url, "kn_serving_invocation_duration_seconds_count")
            dropped = promtool.get_json(f"{url}/api/v1/targets?state=any")["data"]["droppedTargets"]
    assert len(rows) == 2, rows
    for row in rows:
        labels = row["metric"]
        assert labels[revision_label] == "cart-00002"
        assert labels[namespace_label] == "shop"
        assert labels["pod"] == pod["__meta_kubernetes_pod_name"]
    assert len(dropped) == 2


def _otel_labels() -> tuple[str, str]:
    """(namespace label, revision label) that the knative-otel dialect groups queue-proxy series by."""
    try:
        from rollout.analysis import dialects  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pytest.skip("rollout.analysis.dialects (the metric dialects) is not in this checkout yet")
    labels = dialects.KNATIVE_OTEL.requests.labels
    return str(labels.namespace), str(labels.revision)


def _targets(relabelings: list[Obj], source: str, target: str) -> dict[str, str]:
    return {r[source][0]: r[target] for r in relabelings if r.get("action", "replace") == "replace"}


def test_queue_proxy_scrapes_add_the_labels_the_dialect_reads() -> None:
    namespace_label, revision_label = _otel_labels()
    wanted = {
        "__meta_kubernetes_pod_label_serving_knative_dev_revision": revision_label,
        "__meta_kubernetes_namespace": namespace_label,
    }
    monitor = only(render(OBS), "PodMonitor")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert wanted.items() <= _targets(endpoint["relabelings"], "sourceLabels", "targetLabel").items()
    job = _scrape_job()
    assert wanted.items() <= _targets(job["relabel_configs"], "source_labels", "target_label").items()


def test_queue_proxy_scrapes_select_only_revision_pods() -> None:
    monitor = only(render(OBS), "PodMonitor")
    assert monitor["spec"]["selector"] == {
        "matchExpressions": [{"key": "serving.knative.dev/revision", "operator": "Exists"}]
    }
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http-usermetric"
    keeps = [r for r in _scrape_job()["relabel_configs"] if r.get("action") == "keep"]
    assert {r["source_labels"][0]: r["regex"] for r in keeps} == {
        "__meta_kubernetes_pod_label_serving_knative_dev_revision": ".+",
        "__meta_kubernetes_pod_container_port_name": "http-usermetric",
    }


def _dashboard() -> Obj:
    config_map = only(render(OBS), "ConfigMap", f"{RELEASE}-knative-rollout-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard: Obj = json.loads(config_map["data"]["knative-rollout.json"])
    return dashboard


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$service": ".*", "$metric": ".*"}


def _dashboard_queries() -> list[str]:
    queries = []
    for panel in _dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            queries.append(expr)
    return queries


def test_dashboard_shows_weights_verdicts_and_values(tmp_path: Path) -> None:
    titles = {p["title"] for p in _dashboard()["panels"]}
    assert {"Canary weight", "Verdicts", "Metric value: candidate vs stable"} <= titles
    # every query parses: promtool checks them as recording rules
    rules = [{"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(_dashboard_queries())]
    path = promtool.write_rules(tmp_path, [{"name": "dashboard", "rules": rules}])
    result = promtool.run(["check", "rules", str(path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------- metric names vs the code

METRIC_CLASSES = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count"),
    "CounterMetricFamily": ("_total",),
    "GaugeMetricFamily": ("",),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
}


def _literal(node: ast.AST | None) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def metrics_in_code() -> set[str]:
    """Series names the package's prometheus_client metrics expose, read from the source (literal names,
    with `namespace=`/`subsystem=` prefixes and the suffix each metric type adds)."""
    names: set[str] = set()
    for path in (ROOT / "rollout").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            cls = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            if cls not in METRIC_CLASSES or not node.args:
                continue
            name = _literal(node.args[0])
            if not name:
                continue
            kwargs = {k.arg: _literal(k.value) for k in node.keywords}
            full = "_".join(p for p in (kwargs.get("namespace"), kwargs.get("subsystem"), name) if p)
            if cls in {"Counter", "CounterMetricFamily"}:
                full = full.removesuffix("_total")
            names.update(full + suffix for suffix in METRIC_CLASSES[cls])
    return {n for n in names if n.startswith("knrollout_")}


def metrics_the_chart_uses() -> set[str]:
    text = json.dumps(_rule_groups()) + " ".join(_dashboard_queries())
    return set(re.findall(r"\bknrollout_[a-z_]+", text))


def test_alerts_and_dashboard_use_metrics_the_controller_exports() -> None:
    exported = metrics_in_code()
    if not exported:
        pytest.skip(
            "the controller's /metrics (prometheus_client metrics named knrollout_*) are not in rollout/ yet"
        )
    missing = metrics_the_chart_uses() - exported
    assert not missing, f"the chart queries metrics the controller does not export: {sorted(missing)}"


def test_failure_alert_covers_exactly_the_reasons_that_end_a_rollout_badly() -> None:
    """The reasons in the alert are those of the engine's transition table rows from a running phase into
    RolledBack or Failed."""
    from rollout.api.rollout import Phase
    from rollout.engine.transitions import TABLE

    bad = {
        row.reason
        for (source, _event), row in TABLE.items()
        if not source.terminal and row.to in {Phase.ROLLED_BACK, Phase.FAILED}
    }
    rule = next(r for r in _rule_groups()[0]["rules"] if r["alert"] == "KnativeRolloutFailed")
    (alternation,) = set(re.findall(r'outcome=~"([^"]+)"', rule["expr"]))
    assert set(alternation.split("|")) == bad
