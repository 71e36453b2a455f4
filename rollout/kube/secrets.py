"""Reading Secret keys for the metric source's credentials (analysis.auth.SecretReader), through the API (no
Secret cache: only the keys a policy names are read, when a query needs them)."""

from __future__ import annotations

import base64
import binascii

from rollout.analysis.auth import SecretUnavailable
from rollout.kube.client import KubeClient, KubeError
from rollout.kube.resources import SECRETS


class KubeSecretReader:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def read(self, namespace: str, name: str, key: str) -> bytes:
        try:
            secret = await self.client.get(SECRETS, namespace, name)
        except KubeError as exc:
            raise SecretUnavailable(f"Secret {namespace}/{name} cannot be read: {exc}") from None
        if secret is None:
            raise SecretUnavailable(f"Secret {namespace}/{name} does not exist")
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
