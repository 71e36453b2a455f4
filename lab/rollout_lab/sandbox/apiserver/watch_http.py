"""WATCH over HTTP: a chunked response of newline-delimited JSON events, as the API server streams them.

- `resourceVersion` unset or "0": synthetic ADDED events for the current objects, then live events;
  "N": events after N from the log, or a single ERROR event carrying a 410 Expired Status when N is older
  than the log (HTTP 200, as the watch cache answers).
- `allowWatchBookmarks`: BOOKMARK events (only kind, apiVersion, metadata.resourceVersion) when idle and
  right before a `timeoutSeconds` close; `sendInitialEvents=true` ends the initial events with a bookmark
  annotated `k8s.io/initial-events-end`.
- Faults: drop-watch ends streams, expire-watch answers new watches with 410.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from rollout_lab.sandbox.apiserver import tables
from rollout_lab.sandbox.apiserver.eventlog import LogEntry, Watcher
from rollout_lab.sandbox.apiserver.faults import Fault, FaultInjector
from rollout_lab.sandbox.apiserver.resources import ResourceSpec
from rollout_lab.sandbox.apiserver.store import MemoryStore
from rollout_lab.sandbox.store_api import ApiError, Obj

TRUE = ("true", "True", "1")
IDLE_CHECK = 5.0  # seconds between checks that an idle client is still there


@dataclass
class WatchConfig:
    bookmark_interval: float = 60.0
    # A watch without timeoutSeconds ends after a random time in [min, 2*min), as kube-apiserver's
    # --min-request-timeout makes it (1800 s there).
    min_request_timeout: float = 1800.0


class WatchSession:
    """One open watch stream; `close()` ends it (the client sees the response end)."""

    def __init__(self, watcher: Watcher, spec: ResourceSpec, namespace: str | None) -> None:
        self.watcher = watcher
        self.spec = spec
        self.namespace = namespace

    def close(self, reason: str) -> None:
        self.watcher.close(reason)


class WatchStreams:
    """The open watch streams (so that faults and shutdown can end them)."""

    def __init__(self) -> None:
        self.open: set[WatchSession] = set()

    def drop_for(self, fault: Fault, faults: FaultInjector) -> int:
        """End the open streams a new drop-watch fault matches (each one counts as an injection)."""
        dropped = 0
        for session in sorted(self.open, key=id):
            rt = session.spec.rt
            if fault.matches("watch", rt.group_resource, session.namespace) and faults.consume(fault):
                session.close("dropped by an injected fault")
                dropped += 1
        return dropped

    def close_all(self) -> None:
        for session in list(self.open):
            session.close("server shutting down")


def _event(kind: str, obj_json: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj_json + b"}\n"


def error_event(err: ApiError) -> bytes:
    return _event("ERROR", json.dumps(err.status(), separators=(",", ":")).encode())


def bookmark(spec: ResourceSpec, rv: str, initial_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    body = {"kind": spec.rt.kind, "apiVersion": spec.rt.api_version, "metadata": meta}
    return _event("BOOKMARK", json.dumps(body, separators=(",", ":")).encode())


class WatchRequest:
    """The parsed query of a watch request; raises 400/422 like the server for bad combinations."""

    def __init__(self, query: Mapping[str, str], config: WatchConfig) -> None:
        self.resource_version = query.get("resourceVersion") or None
        self.label_selector = query.get("labelSelector")
        self.field_selector = query.get("fieldSelector")
        self.bookmarks = query.get("allowWatchBookmarks", "") in TRUE
        send_initial = query.get("sendInitialEvents")
        self.send_initial = send_initial in TRUE
        timeout = query.get("timeoutSeconds")
        try:
            self.timeout = float(timeout) if timeout else config.min_request_timeout * (1 + random.random())
        except ValueError:
            raise ApiError(400, "BadRequest", f'invalid timeoutSeconds "{timeout}"') from None
        if self.send_initial:
            if query.get("resourceVersionMatch") != "NotOlderThan":
                raise ApiError(
                    422,
                    "Invalid",
                    "sendInitialEvents: Forbidden: sendInitialEvents is only supported "
                    "with resourceVersionMatch set to NotOlderThan",
                )
            if not self.bookmarks:
                raise ApiError(
                    422,
                    "Invalid",
                    "allowWatchBookmarks: Required value: allowWatchBookmarks must be "
                    "true when sendInitialEvents is set",
                )
        elif send_initial is not None and self.resource_version in (None, "0"):
            # sendInitialEvents=false: start at the current version without the initial ADDED events.
            self.resource_version = None if self.resource_version == "0" else self.resource_version
            self.skip_initial = True
            return
        self.skip_initial = False


async def serve(
    request: web.Request,
    store: MemoryStore,
    spec: ResourceSpec,
    namespace: str | None,
    *,
    config: WatchConfig,
    faults: FaultInjector,
    streams: WatchStreams,
    as_table: bool,
) -> web.StreamResponse:
    params = WatchRequest(request.query, config)
    resource = spec.rt.group_resource
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    if faults.pick("expire-watch", "watch", resource, namespace) is not None:
        await response.prepare(request)
        await response.write(
            error_event(ApiError(410, "Expired", "too old resource version: injected fault"))
        )
        return response
    start = store.resource_version if params.skip_initial else params.resource_version
    try:
        watcher = store.open_watcher(
            spec.rt,
            namespace,
            start,
            label_selector=params.label_selector,
            field_selector=params.field_selector,
        )
    except ApiError as err:
        if err.code != 410:
            raise
        await response.prepare(request)
        await response.write(error_event(err))
        return response
    drop = faults.pick("drop-watch", "watch", resource, namespace)
    session = WatchSession(watcher, spec, namespace)
    streams.open.add(session)
    initial = watcher.pending() if params.send_initial else -1
    try:
        await response.prepare(request)
        await _pump(
            request,
            response,
            store=store,
            spec=spec,
            session=session,
            params=params,
            drop=drop,
            initial=initial,
            as_table=as_table,
            interval=config.bookmark_interval,
        )
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watcher.close()
        streams.open.discard(session)
    return response


def _encoder(
    spec: ResourceSpec, as_table: bool, clock: Callable[[], float]
) -> Callable[[str, LogEntry], bytes]:
    if not as_table:
        return lambda kind, entry: _event(kind, entry.object_json())

    def encode(kind: str, entry: LogEntry) -> bytes:
        table = tables.table(spec, [entry.obj], {"resourceVersion": str(entry.rv)}, clock=clock)
        return _event(kind, json.dumps(table, separators=(",", ":")).encode())

    return encode


async def _pump(
    request: web.Request,
    response: web.StreamResponse,
    *,
    store: MemoryStore,
    spec: ResourceSpec,
    session: WatchSession,
    params: WatchRequest,
    drop: Fault | None,
    initial: int,
    as_table: bool,
    interval: float,
) -> None:
    loop = asyncio.get_running_loop()
    watcher = session.watcher
    encode = _encoder(spec, as_table, store.clock)
    started = loop.time()
    deadline = started + params.timeout
    drop_at = started + drop.after if drop is not None else None
    next_bookmark = started + interval
    if initial == 0:
        await response.write(bookmark(spec, store.resource_version, initial_end=True))
    while True:
        now = loop.time()
        if now >= deadline:
            if params.bookmarks:
                await response.write(bookmark(spec, store.resource_version))
            return
        if (drop_at is not None and now >= drop_at) or _gone(request):
            return
        limits = [deadline, now + IDLE_CHECK]
        if params.bookmarks:
            limits.append(next_bookmark)
        if drop_at is not None:
            limits.append(drop_at)
        item = await watcher.next(max(0.0, min(limits) - now))
        if item is None:
            if watcher.closed:
                return
            if params.bookmarks and loop.time() >= next_bookmark:
                await response.write(bookmark(spec, store.resource_version))
                next_bookmark = loop.time() + interval
            continue
        batch = [item, *watcher.drain()]
        chunks: list[bytes] = []
        for kind, entry in batch:
            chunks.append(encode(kind, entry))
            if initial > 0:
                initial -= 1
                if initial == 0:
                    chunks.append(bookmark(spec, store.resource_version, initial_end=True))
        await response.write(b"".join(chunks))


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
