"""How to reach a policy's Prometheus: its `metricSource.prometheus` resolved into concrete connection
settings (address, headers, credentials, TLS material), reading Secrets through a small protocol.

Two kinds of settings, with different rights (rollout.api.source):
- granted (a ClusterMetricSource, written by the admins): Secrets of the source's `secretNamespace`, and a
  bearer token file in the controller's pod, read at every resolution since projected tokens rotate;
- a policy's own (only where the admins allow it): Secrets of the policy's namespace that opt in with the
  label knrollout.dev/metric-credentials: "true"; no file, and no credentials without its own address.
Secrets are read through `SecretReader` (the controller implements it with kubernetes-asyncio, the tests with
a dictionary). Resolution fails with AuthError, which the adapter turns
into a MeasurementError for the queries of that source: a missing Secret never crashes anything.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rollout.api.common import SecretKeyRef
from rollout.api.source import BasicAuth, GrantedBearerToken, PrometheusSource, TlsConfig


class SecretUnavailable(Exception):
    """The Secret or its key cannot be read (missing, forbidden, API error); the message says which."""


class SecretReader(Protocol):
    async def read(self, namespace: str, name: str, key: str, *, opt_in: bool) -> bytes:
        """The decoded value of `key` in Secret `namespace/name`; with `opt_in`, only if the Secret carries
        the knrollout.dev/metric-credentials: "true" label or annotation. Raises SecretUnavailable."""
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


def header_value(raw: bytes | str, what: str) -> str:
    text = _text(raw, what).strip()
    if not text:
        raise AuthError(f"{what} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise AuthError(
            f"{what} holds control characters (a line break inside?); it cannot be sent in a header"
        )
    return text


@dataclass(frozen=True)
class SecretRefReader:
    """Reads the Secret keys an object names: in `namespace`, and (`opt_in`) only from Secrets that opted in.
    A failure is an AuthError naming the field (`field_path`) and the Secret."""

    secrets: SecretReader
    namespace: str
    opt_in: bool

    async def __call__(self, ref: SecretKeyRef, field_path: str) -> bytes:
        try:
            return await self.secrets.read(self.namespace, ref.name, ref.key, opt_in=self.opt_in)
        except SecretUnavailable as exc:
            raise AuthError(
                f"{field_path}: cannot read key {ref.key!r} of Secret {self.namespace}/{ref.name}: {exc}"
            ) from exc


async def _read_token_file(path: str) -> bytes:
    """A granted source's token file (ClusterMetricSource only: no namespaced field reaches here)."""
    try:
        return await asyncio.to_thread(Path(path).read_bytes)
    except OSError as exc:
        raise AuthError(
            f"ClusterMetricSource prometheus.bearerToken.file: cannot read {path}: {exc.strerror or exc}"
        ) from exc


async def resolve_connection(
    spec: PrometheusSource,
    namespace: str,
    secrets: SecretReader,
    default_address: str | None,
    *,
    granted: bool = False,
) -> Connection:
    """Concrete settings for `spec`. `granted`: an admin's ClusterMetricSource whose Secrets live in
    `namespace` (its secretNamespace); otherwise a policy's own settings as seen from its `namespace`.
    Raises AuthError."""
    address = spec.address or default_address
    if not address:
        raise AuthError(
            "metricSource: the controller has no default Prometheus address and the policy names no "
            "source; set metricSource.ref to a ClusterMetricSource (kubectl get clustermetricsources)"
        )
    if not granted and spec.address is None and spec.names_secrets():
        raise AuthError(
            "metricSource.prometheus: credentials are sent only to the policy's own address, never to the "
            "controller's Prometheus; set address, or drop the credentials"
        )
    read = SecretRefReader(secrets, namespace, opt_in=not granted)
    headers = await _headers(spec, read)
    if isinstance(spec.bearer_token, GrantedBearerToken) and spec.bearer_token.file is not None:
        token = await _read_token_file(spec.bearer_token.file)
        headers.append(("Authorization", "Bearer " + header_value(token, "prometheus.bearerToken")))
    elif spec.bearer_token is not None and spec.bearer_token.secret_key_ref is not None:
        where = "metricSource.prometheus.bearerToken"
        token = await read(spec.bearer_token.secret_key_ref, where)
        headers.append(("Authorization", "Bearer " + header_value(token, where)))
    if spec.basic_auth is not None:
        headers.append(("Authorization", await _basic(spec.basic_auth, read)))
    tls = await _tls(spec.tls, read) if spec.tls is not None else None
    return Connection(address=address.rstrip("/"), timeout=spec.timeout, headers=tuple(headers), tls=tls)


async def _headers(spec: PrometheusSource, read: SecretRefReader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for i, header in enumerate(spec.headers):
        where = f"metricSource.prometheus.headers[{i}] ({header.name})"
        if header.secret_key_ref is not None:
            raw: bytes | str = await read(header.secret_key_ref, where)
        else:
            raw = header.value or ""
        headers.append((header.name, header_value(raw, where)))
    has_auth_header = any(name.lower() == "authorization" for name, _ in headers)
    if (spec.bearer_token is not None or spec.basic_auth is not None) and has_auth_header:
        raise AuthError(
            "metricSource.prometheus: an Authorization header is given together with bearerToken/basicAuth; "
            "keep one"
        )
    return headers


async def _basic(ba: BasicAuth, read: SecretRefReader) -> str:
    where = "metricSource.prometheus.basicAuth"
    user = await read(SecretKeyRef(name=ba.secret_name, key=ba.username_key), where)
    password = await read(SecretKeyRef(name=ba.secret_name, key=ba.password_key), where)
    username = header_value(user, f"{where}.usernameKey")
    secret = _text(password, f"{where}.passwordKey").rstrip("\r\n")
    # Built here rather than by requests so that non-Latin-1 credentials are sent as UTF-8.
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")


async def _tls(t: TlsConfig, read: SecretRefReader) -> TlsMaterial:
    where = "metricSource.prometheus.tls"
    return TlsMaterial(
        ca_pem=await read(t.ca_secret_ref, f"{where}.caSecretRef") if t.ca_secret_ref else None,
        cert_pem=await read(t.cert_secret_ref, f"{where}.certSecretRef") if t.cert_secret_ref else None,
        key_pem=await read(t.key_secret_ref, f"{where}.keySecretRef") if t.key_secret_ref else None,
        server_name=t.server_name,
        insecure_skip_verify=t.insecure_skip_verify,
    )


def uses_secrets(spec: PrometheusSource) -> bool:
    """Whether resolving `spec` reads Secrets of the policy's namespace. Such a source is private to that
    namespace: queries must not be batched with other namespaces', whose Secrets of the same name differ."""
    return spec.names_secrets()
