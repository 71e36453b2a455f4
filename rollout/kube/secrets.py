"""Reading Secret keys for the metric source's credentials (analysis.auth.SecretReader), through the API (no
Secret cache: only the keys a source names are read, when a query needs them).

A read for a namespaced object (`opt_in`) succeeds only if the Secret itself says it may be used so: the label
(or annotation) knrollout.dev/metric-credentials: "true", which only someone who can write the Secret sets.
Without it, a team that may not read a Secret of its namespace cannot make the controller read it for them."""

from __future__ import annotations

import base64
import binascii

from rollout.analysis.auth import SecretUnavailable
from rollout.api.source import CREDENTIALS_OPT_IN
from rollout.kube.client import KubeClient, KubeError
from rollout.kube.resources import SECRETS


class KubeSecretReader:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def read(self, namespace: str, name: str, key: str, *, opt_in: bool) -> bytes:
        try:
            secret = await self.client.get(SECRETS, namespace, name)
        except KubeError as exc:
            raise SecretUnavailable(f"Secret {namespace}/{name} cannot be read: {exc}") from None
        if secret is None:
            raise SecretUnavailable(f"Secret {namespace}/{name} does not exist")
        if opt_in and not opted_in(secret):
            raise SecretUnavailable(not_opted_in(namespace, name))
        data = secret.get("data") or {}
        if key in data:
            try:
                return base64.b64decode(str(data[key]), validate=True)
            except (binascii.Error, ValueError):
                raise SecretUnavailable(
                    f"Secret {namespace}/{name} key {key!r} is not valid base64"
                ) from None
        string_data = secret.get("stringData") or {}
        if key in string_data:
            return str(string_data[key]).encode()
        raise SecretUnavailable(
            f"Secret {namespace}/{name} has no key {key!r} (keys: {', '.join(sorted(data))})"
        )


def opted_in(secret: dict[str, object]) -> bool:
    meta = secret.get("metadata")
    if not isinstance(meta, dict):
        return False
    marks = [meta.get("labels") or {}, meta.get("annotations") or {}]
    return any(isinstance(m, dict) and m.get(CREDENTIALS_OPT_IN) == "true" for m in marks)


def not_opted_in(namespace: str, name: str) -> str:
    return (
        f"Secret {namespace}/{name} has not opted in to be read for policies; whoever may write it can "
        f"allow it: kubectl label secret {name} -n {namespace} {CREDENTIALS_OPT_IN}=true"
    )
