#!/usr/bin/env bash
# Build the controller image from this checkout and load it into the kind cluster (no registry needed).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind
docker build -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"
echo "image $IMAGE is in kind cluster $CLUSTER"
