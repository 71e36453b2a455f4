"""`SandboxApiServer`: the sandbox Kubernetes API server over HTTP on loopback.

    async with SandboxApiServer() as srv:
        srv.url, srv.store, srv.faults
        srv.write_kubeconfig(path)

Serves discovery, `/openapi/v3`, the REST resources (see `rest`), health endpoints, and the fault
injection endpoint `/_sandbox/faults` (GET lists, POST adds a fault from its JSON fields, DELETE clears;
DELETE `/_sandbox/faults/{id}` removes one) — a path no real API server serves.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from rollout_lab.sandbox.apiserver import discovery, openapi
from rollout_lab.sandbox.apiserver.faults import FaultInjector
from rollout_lab.sandbox.apiserver.kubeconfig import write_kubeconfig
from rollout_lab.sandbox.apiserver.rbac import Authorizer, UserInfo
from rollout_lab.sandbox.apiserver.rest import RestApi, json_response, read_body, status_response
from rollout_lab.sandbox.apiserver.reviews import USER, Identities, Reviews
from rollout_lab.sandbox.apiserver.store import MemoryStore
from rollout_lab.sandbox.apiserver.watch_http import WatchConfig, WatchStreams
from rollout_lab.sandbox.store_api import ApiError

log = logging.getLogger(__name__)
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
ADMIN = UserInfo("sandbox-admin", "", ("system:masters", "system:authenticated"))


class SandboxApiServer:
    """An API server over `store` (a fresh MemoryStore by default) on `host`:`port` (0: any free port).

    `token`: when set, requests must carry `Authorization: Bearer <token>` or one of `users`' tokens (401
    otherwise); the kubeconfig always carries the token, which stands for an admin (group system:masters).
    `users`: more tokens and who they are, for TokenReviews and SubjectAccessReviews (`reviews`, `rbac`). `bookmark_interval`: seconds between BOOKMARK events of an idle watch.
    """

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        faults: FaultInjector | None = None,
        bookmark_interval: float = 60.0,
        min_request_timeout: float = 1800.0,
        namespace: str = "default",
        users: Mapping[str, UserInfo] | None = None,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.host = host
        self.port = port
        self.token = token
        self.namespace = namespace
        self.faults = faults if faults is not None else FaultInjector()
        self.streams = WatchStreams()
        self.watch_config = WatchConfig(bookmark_interval, min_request_timeout)
        self.identities = Identities(users or {})
        self.identities.add(token or "sandbox", ADMIN)
        access = Reviews(self.identities, Authorizer(self.store))
        self.rest = RestApi(self.store, self.faults, self.streams, self.watch_config, access)
        self.faults.on_add(self._on_fault)
        self._runner: web.AppRunner | None = None
        self._openapi_cache: dict[tuple[int, str], Any] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> SandboxApiServer:
        app = self.build_app()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        self._runner = runner
        return self

    async def stop(self) -> None:
        self.streams.close_all()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SandboxApiServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def write_kubeconfig(self, path: str | os.PathLike[str], namespace: str | None = None) -> Path:
        return write_kubeconfig(
            path, self.url, namespace=namespace or self.namespace, token=self.token or "sandbox"
        )

    # ------------------------------------------------------------------ app

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_get("/version", self._version)
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._health)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/openapi/v3", self._openapi_index)
        app.router.add_get("/openapi/v3/{path:.*}", self._openapi_document)
        app.router.add_route("*", "/_sandbox/faults", self._faults_collection)
        app.router.add_delete("/_sandbox/faults/{id}", self._fault_delete)
        app.router.add_route("*", "/api/{tail:.*}", self.rest.handle)
        app.router.add_route("*", "/apis/{tail:.*}", self.rest.handle)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            request[USER] = self._authenticate(request)
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as err:
            return status_response(err)
        except web.HTTPException as err:
            if err.status == 404:
                return status_response(
                    ApiError(404, "NotFound", "the server could not find the requested resource")
                )
            if err.status == 405:
                return status_response(
                    ApiError(405, "MethodNotAllowed", "the server does not allow this method")
                )
            raise
        except Exception as err:
            log.exception("sandbox API server: internal error on %s %s", request.method, request.path)
            return status_response(ApiError(500, "InternalError", f"Internal error occurred: {err!r}"))

    def _authenticate(self, request: web.Request) -> UserInfo:
        """Who sent `request`: the user of its bearer token; without a token configured, anyone unknown
        is the admin (a development server with authentication off)."""
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        user = self.identities.authenticate(given) if scheme.lower() == "bearer" and given else None
        if user is not None:
            return user
        if self.token is not None and request.path not in PUBLIC_PATHS:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return ADMIN

    def _on_fault(self, fault: Any) -> None:
        if fault.action == "drop-watch":
            self.streams.drop_for(fault, self.faults)

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(discovery.version_info())

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        return json_response(discovery.api_versions(f"{self.host}:{self.port}"))

    async def _apis(self, request: web.Request) -> web.Response:
        return json_response(discovery.group_list(self.store.registry))

    def _openapi(self, key: str) -> Any:
        cache_key = (self.store.registry.revision, key)
        if cache_key not in self._openapi_cache:
            if len(self._openapi_cache) > 64:
                self._openapi_cache.clear()
            registry = self.store.registry
            self._openapi_cache[cache_key] = (
                openapi.index(registry) if key == "" else openapi.document(registry, key)
            )
        return self._openapi_cache[cache_key]

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return json_response(self._openapi(""))

    async def _openapi_document(self, request: web.Request) -> web.Response:
        return json_response(self._openapi(request.match_info["path"].strip("/")))

    async def _faults_collection(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return json_response({"faults": [f.describe() for f in self.faults.active()]})
        if request.method == "DELETE":
            self.faults.clear()
            return json_response({"faults": []})
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "GET, POST or DELETE")
        body = await read_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a fault is a JSON object")
        try:
            fault = self.faults.add(**body)
        except ValueError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        return json_response(fault.describe(), 201)

    async def _fault_delete(self, request: web.Request) -> web.Response:
        if not self.faults.remove(request.match_info["id"]):
            raise ApiError(404, "NotFound", f'fault "{request.match_info["id"]}" not found')
        return json_response({"removed": request.match_info["id"]})
