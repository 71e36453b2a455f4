#!/usr/bin/env bash
# Build the controller image from this checkout, load it into the kind cluster and install the chart with
# the queue-proxy PodMonitor, the ServiceMonitor and the alerts, watching every namespace. Then `helm test`.
# (The e2e suite installs its own, namespace-scoped release: uninstall this one before running it.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind helm kubectl

"$ROOT/hack/build-image.sh"
helm --kube-context "$CONTEXT" upgrade --install knative-rollout "$ROOT/charts/knative-rollout" \
  --namespace knative-rollout --create-namespace --wait --timeout 5m \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set metricSource.prometheusUrl=http://prometheus-operated.monitoring.svc:9090 \
  --set metricSource.dialect=knative-otel \
  --set queueProxyMonitor.enabled=true \
  --set serviceMonitor.enabled=true \
  --set prometheusRule.enabled=true \
  "$@"
helm --kube-context "$CONTEXT" test knative-rollout -n knative-rollout --logs
