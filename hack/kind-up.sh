#!/usr/bin/env bash
# A local cluster for knative-rollout: kind + Knative Serving + Kourier + Prometheus (kube-prometheus-stack).
# Needs docker, kind, kubectl and helm. Idempotent: re-running updates what is there.
# Then: hack/install-controller.sh, and `.venv/bin/python -m pytest -m e2e tests/e2e`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind kubectl helm

if ! kind get clusters | grep -qx "$CLUSTER"; then
  config="$(mktemp)"
  # Kourier's NodePort 31080 and Prometheus' NodePort 30090 on the loopback address of this machine only
  cat >"$config" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - {containerPort: 31080, hostPort: $INGRESS_PORT, listenAddress: 127.0.0.1}
      - {containerPort: 30090, hostPort: $PROMETHEUS_PORT, listenAddress: 127.0.0.1}
YAML
  kind create cluster --name "$CLUSTER" --config "$config" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
  rm -f "$config"
fi

echo "== Knative Serving $KNATIVE_VERSION"
release="https://github.com/knative/serving/releases/download/knative-v$KNATIVE_VERSION"
apply_retry -f "$release/serving-crds.yaml"
kc wait --for=condition=Established --timeout=120s crd/services.serving.knative.dev
apply_retry -f "$release/serving-core.yaml"

echo "== Kourier $KNATIVE_VERSION"
apply_retry -f "https://github.com/knative/net-kourier/releases/download/knative-v$KNATIVE_VERSION/kourier.yaml"
kc patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
apply_retry -f "$ROOT/hack/manifests/kourier-nodeport.yaml"
kc patch configmap/config-domain -n knative-serving --type merge -p "{\"data\":{\"$DOMAIN\":\"\"}}"
# request metrics on queue-proxy and the activator (off by default since Knative 1.19), and the
# Knative-Serving-Tag header routing that A/B tests use
kc patch configmap/config-observability -n knative-serving --type merge \
  -p '{"data":{"metrics-protocol":"prometheus","request-metrics-protocol":"prometheus"}}'
kc patch configmap/config-features -n knative-serving --type merge \
  -p '{"data":{"tag-header-based-routing":"Enabled"}}'
kc wait --for=condition=Available --timeout=300s deployment --all -n knative-serving
kc wait --for=condition=Available --timeout=300s deployment --all -n kourier-system

echo "== Prometheus (kube-prometheus-stack)"
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update prometheus-community >/dev/null
# selectors open to every ServiceMonitor/PodMonitor/PrometheusRule (the chart's carry no release label);
# a 5s scrape so that analysis intervals of 10s work; no Alertmanager or Grafana to keep kind small
helm --kube-context "$CONTEXT" upgrade --install prometheus prometheus-community/kube-prometheus-stack \
  --namespace monitoring --create-namespace --wait --timeout 10m \
  --set alertmanager.enabled=false \
  --set grafana.enabled=false \
  --set prometheus.service.type=NodePort \
  --set prometheus.service.nodePort=30090 \
  --set prometheus.prometheusSpec.scrapeInterval=5s \
  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false
# the activator's own metrics (its 5xx never reach queue-proxy); queue-proxy is scraped by the chart's
# PodMonitor (queueProxyMonitor.enabled) installed with the controller
apply_retry -f "$ROOT/hack/manifests/activator-podmonitor.yaml"

cat <<TXT

Cluster $CONTEXT is ready.
  Knative Services:  http://{name}.{namespace}.$DOMAIN:$INGRESS_PORT (Kourier on 127.0.0.1:$INGRESS_PORT)
  Prometheus:        http://127.0.0.1:$PROMETHEUS_PORT
Next: hack/install-controller.sh
TXT
