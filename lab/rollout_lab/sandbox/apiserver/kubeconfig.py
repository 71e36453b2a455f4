"""The kubeconfig a client uses to reach the sandbox (plain HTTP on loopback, a bearer token)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "knative-rollout-sandbox"


def kubeconfig(server_url: str, *, namespace: str = "default", token: str = "sandbox") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": {"server": server_url}}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}
        ],
        "current-context": CONTEXT,
    }


def write_kubeconfig(
    path: str | os.PathLike[str], server_url: str, *, namespace: str = "default", token: str = "sandbox"
) -> Path:
    """Write the kubeconfig (mode 0600, as kubectl does) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(server_url, namespace=namespace, token=token), sort_keys=False)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return target
