"""One HTTP attempt at a Prometheus instant query, through prometheus-api-client, with our TLS settings and
every failure classified (transient or not) for the retry policy. Blocking: run it in a worker thread.

prometheus-api-client keeps requests' Session underneath; we hand it one whose adapter carries our own
SSLContext (CA bundle from memory, client certificate, server name, skip-verify), whose urllib3 retries are
off (retries are ours, bounded in total time), and whose response hook turns any non-200 answer into an
HttpStatusError carrying the status, the Retry-After header and Prometheus' error text (the library's own
exception keeps only a message).
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

import requests
from prometheus_api_client import PrometheusConnect
from requests.adapters import HTTPAdapter

from rollout.analysis.auth import Connection, TlsMaterial
from rollout.analysis.results import decode_answer


class HttpStatusError(Exception):
    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.retry_after = retry_after
        self.detail = detail


class QueryFailure(Exception):
    """A failed attempt. `kind` is a short class for metrics: timeout, connection, tls, http_429, http_5xx,
    http_4xx, bad_response, other. `transient` failures are worth retrying."""

    def __init__(self, kind: str, message: str, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.transient = transient
        self.retry_after = retry_after

    def summary(self) -> str:
        """A few words for the status an on-call engineer reads ("unreachable: Connection refused"); the
        whole message, with the library's exception chain, goes to the log."""
        if self.kind == "connection":
            return f"unreachable: {_os_reason(self.message) or 'cannot connect'}"
        if self.kind == "timeout":
            return self.message if self.message.startswith("no answer") else "no answer in time"
        if self.kind == "tls":
            return f"TLS failed: {_os_reason(self.message) or self.message[:120]}"
        return self.message[:200]


# "[Errno 111] Connection refused" inside urllib3's chain of exceptions
_OS_REASON = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)|\[SSL: [A-Z_]+\] ([^'\"()\]]+)")


def _os_reason(message: str) -> str:
    found = _OS_REASON.search(message)
    return (found.group(1) or found.group(2)).strip().rstrip(".") if found else ""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent/invalid."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# Of an error answer, only this much is read: enough for Prometheus' error text.
_ERROR_BYTES = 8192


def _prometheus_error(response: requests.Response) -> str:
    head = next(response.iter_content(_ERROR_BYTES), b"") if response.raw is not None else b""
    raw = head if isinstance(head, bytes) else head.encode()
    try:
        body = json.loads(raw)
    except ValueError:
        text = raw.decode(response.encoding or "utf-8", errors="replace").strip().replace("\n", " ")
        return text[:300] or response.reason or "no body"
    if isinstance(body, dict) and "error" in body:
        kind = body.get("errorType", "error")
        return f"{kind}: {body['error']}"
    return json.dumps(body)[:300]


def _raise_for_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code != 200:
        raise HttpStatusError(
            response.status_code,
            parse_retry_after(response.headers.get("Retry-After")),
            _prometheus_error(response),
        )


def ssl_context(tls: TlsMaterial) -> ssl.SSLContext:
    """The client-side SSLContext for a source's TLS settings (CA from memory; the client key goes through
    a private temporary file, since Python's ssl module reads key pairs only from files)."""
    if tls.ca_pem is not None:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode("ascii", errors="strict"))
    else:
        context = ssl.create_default_context()
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_pem is not None and tls.key_pem is not None:
        fd, path = tempfile.mkstemp(prefix="rollout-client-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(tls.cert_pem.rstrip(b"\n") + b"\n" + tls.key_pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
    return context


class _TlsAdapter(HTTPAdapter):
    """Uses our SSLContext for every connection instead of requests' default one and certifi's bundle."""

    def __init__(self, context: ssl.SSLContext, server_name: str | None) -> None:
        self._context = context
        self._server_name = server_name
        self._cert_reqs = "CERT_NONE" if context.verify_mode == ssl.CERT_NONE else "CERT_REQUIRED"
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        kwargs = cast(dict[str, Any], pool_kwargs)
        for key in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
            kwargs.pop(key, None)
        kwargs["ssl_context"] = self._context
        kwargs["cert_reqs"] = self._cert_reqs
        if self._server_name:
            kwargs["server_hostname"] = self._server_name
            kwargs["assert_hostname"] = self._server_name
        return host_params, kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would point the connection at certifi's bundle here; our context already decides.
        conn.cert_reqs = self._cert_reqs
        conn.ca_certs = None
        conn.ca_cert_dir = None


@dataclass(frozen=True)
class PromClient:
    """prometheus-api-client's client for a connection, with the session we built for it. Queries go through
    `session` with the client's url, headers and auth (see `instant_query`), so nothing here reaches into the
    library's private attributes."""

    api: PrometheusConnect
    session: requests.Session

    def close(self) -> None:
        self.session.close()


def build_client(connection: Connection) -> PromClient:
    """A prometheus-api-client client for `connection` (no retries of its own; non-200 raises)."""
    session = requests.Session()
    session.hooks["response"].append(_raise_for_status)
    client = PrometheusConnect(
        url=connection.address,
        headers=dict(connection.headers),
        session=session,
        timeout=connection.timeout,
    )
    adapter: HTTPAdapter
    if connection.tls is not None:
        adapter = _TlsAdapter(ssl_context(connection.tls), connection.tls.server_name)
        session.verify = not connection.tls.insecure_skip_verify
    else:
        adapter = HTTPAdapter(max_retries=0)
    # Replaces the adapter (with urllib3 retries) the client mounted on the same prefix.
    session.mount(connection.address, adapter)
    return PromClient(client, session)


def _classify(exc: Exception) -> QueryFailure:
    if isinstance(exc, QueryFailure):
        return exc
    if isinstance(exc, HttpStatusError):
        if exc.status == 429:
            return QueryFailure("http_429", f"rate limited: {exc}", True, exc.retry_after)
        if exc.status >= 500:
            return QueryFailure("http_5xx", str(exc), True, exc.retry_after)
        return QueryFailure("http_4xx", str(exc), False)
    if isinstance(exc, requests.exceptions.SSLError):
        return QueryFailure("tls", f"TLS error: {exc}", False)
    if isinstance(exc, requests.Timeout):
        return QueryFailure("timeout", f"timed out: {exc}", True)
    if isinstance(exc, requests.ConnectionError):
        return QueryFailure("connection", f"cannot connect: {exc}", True)
    if isinstance(exc, ValueError | KeyError | TypeError):
        return QueryFailure("bad_response", f"not a Prometheus API answer: {exc!r}", False)
    return QueryFailure("other", f"{type(exc).__name__}: {exc}", False)


# The largest answer read from a Prometheus: a batched query for every due rollout is well under it.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
_CHUNK = 256 * 1024


def _read_bounded(response: requests.Response, deadline: float) -> str:
    """The body, read in chunks until `deadline` (monotonic) or MAX_ANSWER_BYTES: requests' own timeout is
    per read, so a server trickling bytes could otherwise hold the thread forever."""
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise QueryFailure(
                "bad_response", f"the answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB", False
            )
        if time.monotonic() > deadline:
            raise QueryFailure("timeout", "the answer did not arrive within the query's timeout", True)
        parts.append(chunk)
    return b"".join(parts).decode(response.encoding or "utf-8")


# Above this many bytes of encoded query, the query travels in a form body (Prometheus takes POST on
# /api/v1/query): proxies in front of Prometheus cap a URL near 8 KiB (nginx's default header buffers), and a
# batch's PromQL repeats its revision filter, up to dialects.MAX_PATTERN_CHARS, a few times.
LONG_QUERY_BYTES = 6 * 1024
# ...and sent again as GET when POST is refused: 405, or 403 from a kube-rbac-proxy that maps POST to the
# `create` verb where the admins granted `get` only
POST_REFUSED = frozenset({403, 405})


def instant_query(client: PromClient, promql: str, at: datetime | None, timeout: float) -> object:
    """The `result` of one instant query attempt (instant-vector rows read as `Sample`s), within `timeout`
    overall. Sent as GET, or as POST when the query is long (GET again if the server refuses POST).
    Raises QueryFailure, nothing else."""
    deadline = time.monotonic() + timeout
    # Prometheus' own evaluation timeout; its durations take no fractions, hence milliseconds.
    fields = {"query": promql, "timeout": f"{max(1, int(timeout * 1000))}ms"}
    if at is not None:
        fields["time"] = f"{at.timestamp():.3f}"
    post = len(urlencode(fields)) > LONG_QUERY_BYTES
    try:
        try:
            text = _ask(client, fields, deadline, post=post)
        except HttpStatusError as exc:
            if not (post and exc.status in POST_REFUSED):
                raise
            text = _ask(client, fields, deadline, post=False)
        return decode_answer(text)
    except Exception as exc:  # every failure becomes a classified value for the retry policy
        raise _classify(exc) from exc


def _ask(client: PromClient, fields: Mapping[str, str], deadline: float, *, post: bool) -> str:
    """One request's body text, by `deadline` (monotonic): prometheus-api-client's custom_query, but streamed
    under one deadline and a size cap, for `decode_answer` (compact rows) instead of `response.json()` (a
    generic tree, ~6x the memory)."""
    api, session = client.api, client.session
    with session.request(
        method="POST" if post else "GET",
        url=f"{api.url}/api/v1/query",
        params=None if post else fields,
        data=fields if post else None,
        headers=api.headers,
        auth=api.auth,
        verify=session.verify,
        cert=session.cert,
        timeout=max(deadline - time.monotonic(), 0.001),
        stream=True,
        allow_redirects=False,  # credentials never follow a redirect to another address
    ) as response:
        if 300 <= response.status_code < 400:
            raise QueryFailure("http_4xx", f"HTTP {response.status_code}: redirects are not followed", False)
        return _read_bounded(response, deadline)
