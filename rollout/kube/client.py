"""The controller's one door to the Kubernetes API: kubernetes-asyncio's ApiClient, used for plain JSON.

- Config from a kubeconfig file (any cluster, the sandbox included) or from the pod's service account.
- Every call is instrumented (verb, resource, HTTP code, seconds) for /metrics.
- Errors become `KubeError` with the API server's reason (Conflict, AlreadyExists, Expired, ...).
- Transient failures (5xx, 429 with Retry-After, dropped connections) are retried a few times with a short
  backoff; a 409 never is (the caller re-reads and recomputes).
- Writes are fenced: before any create/patch/update/delete the `fence` callable must not raise (leader
  election installs one, so a replica that lost its lease writes nothing).
- Watches are read line by line with a read timeout, so a half-open connection cannot hang them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.helpers
import orjson
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from yarl import URL

from rollout import tracing
from rollout.kube.resources import CALLS, Resource

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "knative-rollout"

RequestObserver = Callable[[str, str, str, float], None]  # verb, resource, code, seconds


class KubeError(Exception):
    """A failed API call: the HTTP status (0 when no answer came) and the Status reason and message."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def transient(self) -> bool:
        return self.status in {0, 429} or self.status >= 500


class NotLeader(Exception):
    """A write was attempted by a replica that does not hold the lease (or cannot be sure it still does)."""


DEFAULT_CONNECTIONS = 64


def _env_proxy(host: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY, ...) names for the API server, if any: what aiohttp
    would look up at every request, looked up once."""
    try:
        proxy, auth = aiohttp.helpers.get_env_proxy_for_url(URL(host))
    except LookupError:
        return None, None
    return str(proxy), auth


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def error_from(status: int, body: Any, headers: Any = None, fallback: str = "") -> KubeError:
    """A KubeError from an HTTP status and a Status body (bytes, text or dict)."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            data = {"message": body.decode(errors="replace") if isinstance(body, bytes) else body}
    if not isinstance(data, Mapping):
        data = {}
    return KubeError(
        int(data.get("code") or status),
        str(data.get("reason") or fallback or "Unknown"),
        str(data.get("message") or fallback),
        _retry_after(headers),
    )


def _from_api_exception(exc: ApiException) -> KubeError:
    return error_from(int(exc.status or 0), exc.body, exc.headers, str(exc.reason or ""))


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 4
    base: float = 0.05
    cap: float = 1.0
    retry_after_cap: float = 2.0


def _delay(settings: RetrySettings, exc: BaseException | None, attempt: int) -> float:
    """How long to wait after failed attempt number `attempt` (1-based): Retry-After when the server said
    (capped), else exponential backoff."""
    if isinstance(exc, KubeError) and exc.retry_after is not None:
        return min(exc.retry_after, settings.retry_after_cap)
    return float(min(settings.base * 2 ** (attempt - 1), settings.cap))


WRITE_VERBS = frozenset({"create", "patch", "update", "delete"})


def _plural(resource: Resource, subresource: str | None) -> str:
    return f"{resource.plural}/{subresource}" if subresource else resource.plural


class KubeClient:
    def __init__(
        self,
        api: ApiClient,
        *,
        observer: RequestObserver | None = None,
        fence: Callable[[str | None], None] | None = None,
        field_manager: str = FIELD_MANAGER,
        request_timeout: float = 30.0,
        retry: RetrySettings | None = None,
    ) -> None:
        self.api = api
        self.observer = observer
        self.fence = fence  # called with the namespace written to (shards fence each on its own)
        self.writing: dict[str | None, int] = {}  # namespace -> fenced writes in flight
        self.field_manager = field_manager
        self.request_timeout = request_timeout
        self.retry = retry or RetrySettings()

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        context: str | None = None,
        user_agent: str = "knative-rollout",
        connections: int = DEFAULT_CONNECTIONS,
        **kwargs: Any,
    ) -> KubeClient:
        """From a kubeconfig file (KUBECONFIG / ~/.kube/config when None), else the pod's service account.

        `connections`: HTTP connections to the API server at once. Every informer's watch holds one for as
        long as it runs, so the pool must leave room for the workers' requests beside them (the library's
        default, 5 per CPU, left 5 of 10 on two CPUs)."""
        from kubernetes_asyncio import config as kconfig

        configuration = Configuration()
        try:
            await kconfig.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        except (kconfig.ConfigException, FileNotFoundError):
            if kubeconfig is not None:
                raise
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, connections)
        if not configuration.proxy:
            configuration.proxy, proxy_auth = _env_proxy(str(configuration.host or ""))
            if proxy_auth is not None:
                configuration.proxy_headers = {"Proxy-Authorization": proxy_auth.encode()}
        api = ApiClient(configuration)
        # kubernetes-asyncio's session trusts the environment, and aiohttp then looks up the proxy variables
        # and reads ~/.netrc in a worker thread for every request (a sixth of the controller's CPU under a
        # wave of writes). The proxy for the API server was resolved once above; netrc credentials are not
        # API server credentials. So: no per-request environment lookups.
        api.rest_client.pool_manager._trust_env = False
        api.user_agent = user_agent
        return cls(api, **kwargs)

    async def close(self) -> None:
        await self.api.close()

    # --- plumbing --------------------------------------------------------------------------------------

    def _check(
        self, verb: str, resource: Resource, subresource: str | None, fenced: bool, namespace: str | None
    ) -> None:
        if (verb, resource.group, _plural(resource, subresource)) not in CALLS:
            raise AssertionError(f"{verb} {resource.group}/{_plural(resource, subresource)} is not in CALLS")
        if fenced and verb in WRITE_VERBS and self.fence is not None:
            self.fence(namespace)

    def drained(self, namespaces: Callable[[str | None], bool]) -> bool:
        """Whether no fenced write to the namespaces chosen is in flight."""
        return not any(n and namespaces(ns) for ns, n in self.writing.items())

    def _observe(self, verb: str, resource: Resource, code: str, started: float) -> None:
        if self.observer is not None:
            self.observer(verb, resource.plural, code, time.monotonic() - started)

    async def _call(
        self,
        verb: str,
        method: str,
        resource: Resource,
        namespace: str | None,
        name: str | None = None,
        *,
        subresource: str | None = None,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        fenced: bool = True,
    ) -> Any:
        self._check(verb, resource, subresource, fenced, namespace)
        path = resource.path(namespace, name, subresource)
        headers = {"Accept": "application/json", "Content-Type": content_type}

        async def once() -> Any:
            started = time.monotonic()
            try:
                # the raw answer, decoded here with orjson (the library's own decoding is json.loads, and
                # a wave of writes answers thousands of full objects)
                resp = await self.api.call_api(
                    path,
                    method,
                    query_params=query or [],
                    header_params=dict(headers),
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                )
                try:
                    data = await resp.read()
                finally:
                    resp.release()
            except ApiException as exc:
                self._observe(verb, resource, str(exc.status or 0), started)
                raise _from_api_exception(exc) from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._observe(verb, resource, "error", started)
                raise KubeError(0, type(exc).__name__, str(exc) or type(exc).__name__) from None
            if not 200 <= resp.status <= 299:
                self._observe(verb, resource, str(resp.status), started)
                raise error_from(resp.status, data, resp.headers, resp.reason or "")
            self._observe(verb, resource, "2xx", started)
            if not data:
                return None
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                raise KubeError(
                    resp.status, "MalformedResponse", data[:200].decode(errors="replace")
                ) from None

        # One loop for every attempt: a plain loop rather than tenacity's, which cost a tenth of the
        # controller's CPU under a wave of writes when set up per call, for calls that nearly all succeed at
        # once. Transient failures (0, 429, 5xx) wait Retry-After (capped) or back off exponentially; a write
        # checks the lease again before each retry, so a replica that lost it stops retrying.
        if verb not in WRITE_VERBS or not tracing.enabled():
            return await self._attempts(verb, once, fenced, namespace)
        where = {
            "verb": verb,
            "resource": _plural(resource, subresource),
            "namespace": namespace,
            "name": name,
        }
        with tracing.span(f"kube.{verb}", where) as current:
            try:
                return await self._attempts(verb, once, fenced, namespace)
            except KubeError as exc:
                tracing.annotate(current, {"status": exc.status, "reason": exc.reason})
                raise

    async def _attempts(
        self, verb: str, once: Callable[[], Awaitable[Any]], fenced: bool, namespace: str | None
    ) -> Any:
        tracked = fenced and verb in WRITE_VERBS
        if tracked:
            self.writing[namespace] = self.writing.get(namespace, 0) + 1
        try:
            for attempt in range(1, max(self.retry.attempts, 1) + 1):
                if attempt > 1 and tracked and self.fence:
                    self.fence(namespace)
                try:
                    return await once()
                except KubeError as exc:
                    if attempt >= self.retry.attempts or not exc.transient:
                        raise
                    await asyncio.sleep(_delay(self.retry, exc, attempt))
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if tracked:
                left = self.writing[namespace] - 1
                if left:
                    self.writing[namespace] = left
                else:
                    del self.writing[namespace]

    # --- verbs -----------------------------------------------------------------------------------------

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            result: Obj = await self._call("get", "GET", resource, namespace, name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return result

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        page_size: int = 500,
        keep: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], str]:
        """All items (following `continue`) and the list's resourceVersion; with `keep`, only the items it
        keeps (chosen page by page, so the others are never all held at once)."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", page_size)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = await self._call("list", "GET", resource, namespace, query=query)
            for item in page.get("items") or ():
                if keep is not None and not keep(item):
                    continue
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    async def probe(self, resource: Resource, namespace: str | None = None) -> None:
        """One list of at most one item: the API server answers and serves `resource` (KubeError if not:
        404 when it does not serve the resource, 403 when we may not list it, 0 when it did not answer)."""
        await self._call("list", "GET", resource, namespace, query=[("limit", 1)])

    async def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        query = [("fieldManager", self.field_manager)]
        result: Obj = await self._call("create", "POST", resource, namespace, query=query, body=body)
        return result

    async def merge_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        """RFC 7386 merge patch; a metadata.resourceVersion in `patch` is a precondition (409 if stale)."""
        query = [("fieldManager", self.field_manager)]
        result: Obj = await self._call(
            "patch",
            "PATCH",
            resource,
            namespace,
            name,
            subresource=subresource,
            query=query,
            body=patch,
            content_type=MERGE_PATCH,
        )
        return result

    async def replace(
        self, resource: Resource, namespace: str | None, name: str, body: Obj, *, fenced: bool = True
    ) -> Obj:
        query = [("fieldManager", self.field_manager)]
        result: Obj = await self._call(
            "update", "PUT", resource, namespace, name, query=query, body=body, fenced=fenced
        )
        return result

    async def create_unfenced(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        """For the lease itself: leader election must write before it holds the lease."""
        query = [("fieldManager", self.field_manager)]
        result: Obj = await self._call(
            "create", "POST", resource, namespace, query=query, body=body, fenced=False
        )
        return result

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, uid: str | None = None
    ) -> bool:
        """Delete (with a uid precondition when given); False when it was already gone."""
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._call("delete", "DELETE", resource, namespace, name, body=body)
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
        read_timeout: float = 60.0,
    ) -> AsyncGenerator[Obj, None]:
        """Watch events ({type, object}) from `resource_version`. Ends when the server closes the stream;
        raises KubeError for an error answer or an ERROR event (410 Expired: re-list), and KubeError(0) when
        nothing arrives for `read_timeout` seconds (no bookmark, no event: the connection may be dead)."""
        self._check("watch", resource, None, False, namespace)
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout_seconds),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(connect=10, sock_connect=10, sock_read=read_timeout)
        try:
            resp = await self.api.call_api(
                resource.path(namespace),
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._observe("watch", resource, "error", started)
            raise KubeError(0, type(exc).__name__, str(exc) or type(exc).__name__) from None
        self._observe("watch", resource, str(resp.status) if resp.status >= 300 else "2xx", started)
        try:
            if resp.status >= 300:
                raise error_from(resp.status, await resp.read(), resp.headers, resp.reason or "")
            while True:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                    # arrives as the read completes, and the informer would then never stop
                    async with asyncio.timeout(read_timeout + 1):
                        line = await resp.content.readline()
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    raise KubeError(
                        0,
                        "WatchReadTimeout" if isinstance(exc, TimeoutError) else type(exc).__name__,
                        f"no data on the watch for {read_timeout:g}s",
                    ) from None
                if not line:
                    return
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise KubeError(0, "MalformedWatchEvent", line[:200].decode(errors="replace")) from None
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    raise error_from(int(obj.get("code") or 500), obj)
                yield event
        finally:
            resp.close()
