"""How to reach a policy's Prometheus: its `metricSource.prometheus` resolved into concrete connection
settings (address, headers, credentials, TLS material), reading Secrets through a small protocol.

Secrets are read in the policy's namespace through `SecretReader` (the controller implements it with
kubernetes-asyncio, the sandbox with its store). A bearer token file is read from disk at every resolution,
since projected service-account tokens rotate. Resolution fails with AuthError, which the adapter turns
into a MeasurementError for the queries of that source: a missing Secret never crashes anything.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rollout.api.common import SecretKeyRef
from rollout.api.policy import PrometheusSource


class SecretUnavailable(Exception):
    """The Secret or its key cannot be read (missing, forbidden, API error); the message says which."""


class SecretReader(Protocol):
    async def read(self, namespace: str, name: str, key: str) -> bytes:
        """The decoded value of `key` in Secret `namespace/name`. Raises SecretUnavailable."""
        ...


class AuthError(Exception):
    """The connection settings of a source cannot be resolved; the message names the field and the fix."""


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Connection:
    """Everything needed to send a query. Frozen and hashable (clients are cached per Connection); its repr
    never shows credentials."""

    address: str
    timeout: float
    headers: tuple[tuple[str, str], ...] = ()  # credentials included, as Authorization headers
    tls: TlsMaterial | None = None

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.headers)
        return (
            f"Connection(address={self.address!r}, timeout={self.timeout}, headers=[{names}], "
            f"tls={'set' if self.tls else 'unset'})"
        )


def _text(raw: bytes | str, what: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise AuthError(f"{what} is not UTF-8 text") from exc


def _header_value(raw: bytes | str, what: str) -> str:
    text = _text(raw, what).strip()
    if not text:
        raise AuthError(f"{what} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise AuthError(
            f"{what} holds control characters (a line break inside?); it cannot be sent in a header"
        )
    return text


async def _secret(secrets: SecretReader, namespace: str, ref: SecretKeyRef, field_path: str) -> bytes:
    try:
        return await secrets.read(namespace, ref.name, ref.key)
    except SecretUnavailable as exc:
        raise AuthError(
            f"{field_path}: cannot read key {ref.key!r} of Secret {namespace}/{ref.name}: {exc}"
        ) from exc


async def _read_token_file(path: str) -> bytes:
    try:
        return await asyncio.to_thread(Path(path).read_bytes)
    except OSError as exc:
        raise AuthError(
            f"metricSource.prometheus.bearerToken.file: cannot read {path}: {exc.strerror or exc}"
        ) from exc


async def resolve_connection(
    spec: PrometheusSource,
    namespace: str,
    secrets: SecretReader,
    default_address: str | None,
) -> Connection:
    """Concrete settings for `spec` as seen from `namespace`. Raises AuthError."""
    address = spec.address or default_address
    if not address:
        raise AuthError(
            "metricSource.prometheus.address is not set and the controller has no default Prometheus address; "
            "set one of them"
        )
    headers: list[tuple[str, str]] = []
    for i, header in enumerate(spec.headers):
        where = f"metricSource.prometheus.headers[{i}] ({header.name})"
        if header.secret_key_ref is not None:
            raw: bytes | str = await _secret(secrets, namespace, header.secret_key_ref, where)
        else:
            raw = header.value or ""
        headers.append((header.name, _header_value(raw, where)))
    has_auth_header = any(name.lower() == "authorization" for name, _ in headers)
    if (spec.bearer_token is not None or spec.basic_auth is not None) and has_auth_header:
        raise AuthError(
            "metricSource.prometheus: an Authorization header is given together with bearerToken/basicAuth; "
            "keep one"
        )

    if spec.bearer_token is not None:
        where = "metricSource.prometheus.bearerToken"
        if spec.bearer_token.secret_key_ref is not None:
            token_raw = await _secret(secrets, namespace, spec.bearer_token.secret_key_ref, where)
        else:
            assert spec.bearer_token.file is not None
            token_raw = await _read_token_file(spec.bearer_token.file)
        headers.append(("Authorization", "Bearer " + _header_value(token_raw, where)))

    if spec.basic_auth is not None:
        ba = spec.basic_auth
        where = "metricSource.prometheus.basicAuth"
        user = await _secret(
            secrets, namespace, SecretKeyRef(name=ba.secret_name, key=ba.username_key), where
        )
        password = await _secret(
            secrets, namespace, SecretKeyRef(name=ba.secret_name, key=ba.password_key), where
        )
        username = _header_value(user, f"{where}.usernameKey")
        secret = _text(password, f"{where}.passwordKey").rstrip("\r\n")
        # Built here rather than by requests so that non-Latin-1 credentials are sent as UTF-8.
        token = base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))

    tls: TlsMaterial | None = None
    if spec.tls is not None:
        t = spec.tls
        where = "metricSource.prometheus.tls"
        tls = TlsMaterial(
            ca_pem=await _secret(secrets, namespace, t.ca_secret_ref, f"{where}.caSecretRef")
            if t.ca_secret_ref
            else None,
            cert_pem=await _secret(secrets, namespace, t.cert_secret_ref, f"{where}.certSecretRef")
            if t.cert_secret_ref
            else None,
            key_pem=await _secret(secrets, namespace, t.key_secret_ref, f"{where}.keySecretRef")
            if t.key_secret_ref
            else None,
            server_name=t.server_name,
            insecure_skip_verify=t.insecure_skip_verify,
        )
    return Connection(
        address=address.rstrip("/"),
        timeout=spec.timeout,
        headers=tuple(headers),
        tls=tls,
    )


def uses_secrets(spec: PrometheusSource) -> bool:
    """Whether resolving `spec` reads Secrets of the policy's namespace. Such a source is private to that
    namespace: queries must not be batched with other namespaces', whose Secrets of the same name differ."""
    tls = spec.tls
    return (
        (spec.bearer_token is not None and spec.bearer_token.secret_key_ref is not None)
        or spec.basic_auth is not None
        or any(h.secret_key_ref is not None for h in spec.headers)
        or (
            tls is not None
            and any(r is not None for r in (tls.ca_secret_ref, tls.cert_secret_ref, tls.key_secret_ref))
        )
    )
