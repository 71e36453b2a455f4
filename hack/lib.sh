# Shared settings of the hack/ scripts (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${KIND_CLUSTER:-knative-rollout}"
KNATIVE_VERSION="${KNATIVE_VERSION:-1.23.0}"          # Knative Serving and net-kourier release
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"                 # e.g. kindest/node:v1.33.4; empty: kind's default
INGRESS_PORT="${INGRESS_PORT:-8080}"                   # Kourier on http://127.0.0.1:$INGRESS_PORT
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"             # Prometheus on http://127.0.0.1:$PROMETHEUS_PORT
DOMAIN="${DOMAIN:-127.0.0.1.sslip.io}"                 # Service URLs: {name}.{namespace}.$DOMAIN
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml")"
# dev.local: Knative skips tag-to-digest resolution for this registry (config-deployment), so the e2e
# workload revisions that run this image start without any registry
IMAGE="${IMAGE:-dev.local/knative-rollout:$VERSION}"
CONTEXT="kind-$CLUSTER"

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "hack: $tool is required (see docs/install.md)" >&2; exit 1; }
  done
}

kc() { kubectl --context "$CONTEXT" "$@"; }

# kubectl apply with a few retries: freshly created CRDs and webhooks take a moment to be served
apply_retry() {
  local n=0
  until kc apply "$@"; do
    n=$((n + 1))
    [ "$n" -ge 5 ] && return 1
    echo "hack: apply failed, retrying in 5s ($n/5)" >&2
    sleep 5
  done
}
