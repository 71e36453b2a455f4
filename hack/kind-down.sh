#!/usr/bin/env bash
# Delete the kind cluster made by hack/kind-up.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need kind
kind delete cluster --name "$CLUSTER"
