"""A recording reverse proxy for the Kubernetes API: a client pointed at it (through a kubeconfig) reaches
the real API server behind it unchanged, watches streamed, while every request's RBAC attributes are kept.

It needs nothing from the client or the server: whatever code makes the calls, what it asks for is what
is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from tests.chart.rbac import RequestAttributes, attributes
from tests.local_http import serving

# hop-by-hop headers and the ones aiohttp sets itself
_SKIP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


@dataclass
class Recording:
    requests: list[RequestAttributes] = field(default_factory=list)
    other_paths: list[str] = field(default_factory=list)  # discovery, /version, ...

    @property
    def permissions(self) -> set[tuple[str, str, str]]:
        return {r.permission for r in self.requests}


@dataclass
class RecordingProxy:
    url: str
    upstream: str
    recording: Recording

    def write_kubeconfig(self, path: Path, token: str | None = None, namespace: str = "default") -> Path:
        user: dict[str, str] = {"token": token} if token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "recorded", "cluster": {"server": self.url}}],
            "users": [{"name": "recorded", "user": user}],
            "contexts": [
                {
                    "name": "recorded",
                    "context": {"cluster": "recorded", "user": "recorded", "namespace": namespace},
                }
            ],
            "current-context": "recorded",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path


@asynccontextmanager
async def recording_proxy(upstream: str) -> AsyncIterator[RecordingProxy]:
    """Serve on 127.0.0.1 (a free port) a proxy to `upstream` (http://host:port) that records requests."""
    recording = Recording()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=None))

    async def handle(request: web.Request) -> web.StreamResponse:
        attrs = attributes(request.method, request.path_qs)
        if attrs is None:
            recording.other_paths.append(request.path)
        else:
            recording.requests.append(attrs)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS}
        body = await request.read()
        async with session.request(
            request.method,
            upstream + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream_response:
            response = web.StreamResponse(status=upstream_response.status)
            for key, value in upstream_response.headers.items():
                if key.lower() not in _SKIP_HEADERS:
                    response.headers[key] = value
            await response.prepare(request)
            try:
                async for chunk in upstream_response.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # the client went away (a watch it stopped reading): nothing left to forward
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    # watches are long requests: on exit they are cut at once instead of waited for
    async with serving(app, shutdown_timeout=1.0) as url:
        try:
            yield RecordingProxy(url, upstream.rstrip("/"), recording)
        finally:
            await session.close()  # ends the upstream streams, so the handlers return
