"""List-then-watch informers: a local cache of one resource (in one or several namespaces, or cluster-wide),
kept current by a watch, telling a handler about every change.

- Lists page by page, then watches from the list's resourceVersion with bookmarks.
- A watch that ends (server timeout, dropped stream) resumes from the last resourceVersion seen (events or
  bookmarks); a 410 Expired re-lists, and the handler hears of everything that changed meanwhile,
  deletions included.
- A read timeout on the stream: a half-open connection is abandoned after `read_timeout` seconds without
  a byte, then the watch resumes.
- Errors back off exponentially (capped) and never end the informer.
- Every `resync` seconds the handler hears of every cached object again (level-triggered reconcilers use it
  as a safety net).
- An optional `transform` decides what the cache keeps of each object (e.g. without managedFields).
- An optional `keep` decides which namespaces it caches at all (a shard's replica: the shards it holds).
  Objects of other namespaces are dropped as they arrive, unseen by the handlers; `adopt` lists what a
  newly kept namespace holds, and `forget` drops the objects of namespaces no longer kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from rollout.kube.client import KubeClient, KubeError, Obj
from rollout.kube.resources import Resource

log = structlog.get_logger(__name__)

# (event type, old object or None, new object): types ADDED, MODIFIED, DELETED, RESYNC
Handler = Callable[[str, Obj | None, Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]
CacheKey = tuple[str, str]  # (namespace, name)


def cache_key(obj: Obj) -> CacheKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass(frozen=True)
class InformerSettings:
    watch_timeout: int = 300  # server-side timeoutSeconds (jittered up to +50%)
    read_timeout: float = 90.0  # no byte for this long: the connection is presumed dead
    resync: float = 300.0  # 0: never
    backoff_base: float = 0.2
    backoff_cap: float = 10.0


class Informer:
    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        namespaces: Sequence[str] | None = None,
        *,
        label_selector: str | None = None,
        handler: Handler | None = None,
        settings: InformerSettings | None = None,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespaces: list[str | None] = list(namespaces) if namespaces else [None]
        self.label_selector = label_selector
        self.handlers: list[Handler] = [handler] if handler else []
        self.settings = settings or InformerSettings()
        self.transform = transform  # what the cache keeps of each object (before handlers see it)
        self.keep: Callable[[str], bool] | None = None  # which namespaces it caches (None: all)
        self._adopting: set[CacheKey] | None = None  # deleted while `adopt` lists
        self._adopt_lock = asyncio.Lock()
        self._cache: dict[CacheKey, Obj] = {}
        self._synced = {ns: asyncio.Event() for ns in self.namespaces}
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[CacheKey]]] = {}
        self.relists = 0
        self.watch_restarts = 0
        # per namespace, the resourceVersion of the list or of the last event (or bookmark) applied since:
        # where the next watch starts, so that it never replays what the cache already holds
        self._seen: dict[str | None, str] = {}

    # --- the cache -------------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self._cache.values())
        return [o for (ns, _), o in self._cache.items() if ns == namespace]

    def __len__(self) -> int:
        return len(self._cache)

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Keep objects findable by `func(obj)` values (e.g. "namespace/service" of a Revision)."""
        self._indexers[name] = func
        index: dict[str, set[CacheKey]] = {}
        for key, obj in self._cache.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def by_index(self, name: str, value: str) -> list[Obj]:
        keys = self._indexes[name].get(value, ())
        return [self._cache[k] for k in keys if k in self._cache]

    def _index(self, key: CacheKey, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(old) if old is not None else ():
                members = index.get(value)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del index[value]
            for value in func(new) if new is not None else ():
                index.setdefault(value, set()).add(key)

    @property
    def synced(self) -> bool:
        return all(e.is_set() for e in self._synced.values())

    async def wait_synced(self) -> None:
        await asyncio.gather(*(e.wait() for e in self._synced.values()))

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def _emit(self, kind: str, old: Obj | None, new: Obj) -> None:
        for handler in self.handlers:
            try:
                handler(kind, old, new)
            except Exception:
                log.exception("informer handler failed", resource=self.resource.plural)

    def _kept(self, obj: Obj) -> bool:
        return self.keep is None or self.keep(str((obj.get("metadata") or {}).get("namespace") or ""))

    def _apply(self, kind: str, obj: Obj) -> None:
        if not self._kept(obj):
            return
        if kind == "DELETED" and self._adopting is not None:
            self._adopting.add(cache_key(obj))
        if self.transform is not None:
            obj = self.transform(obj)
        obj.setdefault("apiVersion", self.resource.api_version)
        obj.setdefault("kind", self.resource.kind)
        key = cache_key(obj)
        old = self._cache.get(key)
        if kind == "DELETED":
            self._cache.pop(key, None)
            self._index(key, old, None)
            self._emit("DELETED", old, obj)
            return
        self._cache[key] = obj
        self._index(key, old, obj)
        self._emit("ADDED" if old is None else "MODIFIED", old, obj)

    def _replace(self, namespace: str | None, items: Iterable[Obj]) -> None:
        """After a (re-)list: emit what changed since the cache was last current, deletions included."""
        fresh = {cache_key(o): o for o in items}
        stale = [k for k in self._cache if (namespace is None or k[0] == namespace) and k not in fresh]
        for key in stale:
            gone = self._cache.pop(key)
            self._index(key, gone, None)
            self._emit("DELETED", gone, gone)
        for key, obj in fresh.items():
            old = self._cache.get(key)
            old_rv = (old or {}).get("metadata", {}).get("resourceVersion")
            if old is None or old_rv != obj.get("metadata", {}).get("resourceVersion"):
                self._apply("ADDED", obj)

    async def adopt(self, namespaces: Callable[[str], bool]) -> None:
        """Cache what the namespaces `namespaces` chooses hold now (they have just become kept, and their
        events already flow in): list them, and add what the watch has not brought meanwhile. An object the
        watch deleted meanwhile stays deleted."""
        async with self._adopt_lock:
            await self._adopt(namespaces)

    async def _adopt(self, namespaces: Callable[[str], bool]) -> None:
        self._adopting = set()
        try:
            for ns in self.namespaces:
                items, _ = await self.client.list(
                    self.resource,
                    ns,
                    label_selector=self.label_selector,
                    keep=lambda o: namespaces(str((o.get("metadata") or {}).get("namespace") or "")),
                )
                for obj in items:
                    key = cache_key(obj)
                    if key not in self._cache and key not in self._adopting:
                        self._apply("ADDED", obj)
        finally:
            self._adopting = None

    def forget(self, namespaces: Callable[[str], bool]) -> None:
        """Drop, without telling the handlers, the objects of the namespaces `namespaces` chooses."""
        for key in [k for k in self._cache if namespaces(k[0])]:
            self._index(key, self._cache.pop(key), None)

    # --- running ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._run_namespace(ns)) for ns in self.namespaces]
        if self.settings.resync > 0:
            tasks.append(asyncio.create_task(self._resync_loop()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync)
            for obj in list(self._cache.values()):
                self._emit("RESYNC", obj, obj)

    def _backoff(self, failures: int) -> float:
        s = self.settings
        return float(
            min(s.backoff_base * 2 ** min(failures, 20), s.backoff_cap) * (0.5 + random.random() / 2)
        )

    async def _list(self, namespace: str | None) -> str:
        items, rv = await self.client.list(
            self.resource, namespace, label_selector=self.label_selector, keep=self._kept
        )
        for item in items:
            item.setdefault("apiVersion", self.resource.api_version)
            item.setdefault("kind", self.resource.kind)
        self._replace(namespace, items)
        self.relists += 1
        self._synced[namespace].set()
        return rv

    async def _run_namespace(self, namespace: str | None) -> None:
        failures = 0
        self._seen.pop(namespace, None)  # a (re)started informer lists first
        while True:
            try:
                # resume after the last event applied, never from where a broken watch started: that would
                # replay the events since, and the cache would go back in time (an old object served to
                # reconciles) until the replay caught up; no resume point (first, expired, a failed list): list
                rv = self._seen.get(namespace)
                if rv is None:
                    self._seen[namespace] = rv = await self._list(namespace)
                await self._watch(namespace, rv)
                failures = 0
            except KubeError as exc:
                if exc.gone:
                    log.info("watch expired, re-listing", resource=self.resource.plural, namespace=namespace)
                    self._seen.pop(namespace, None)
                    continue
                if exc.status == 0 and exc.reason == "WatchReadTimeout":
                    # a silent connection (no event, no bookmark): resume from where it was, at once
                    log.debug(
                        "watch silent, reconnecting", resource=self.resource.plural, namespace=namespace
                    )
                    continue
                failures += 1
                delay = self._backoff(failures)
                log.warning(
                    "watch failed",
                    resource=self.resource.plural,
                    namespace=namespace,
                    error=str(exc),
                    retry_in=round(delay, 3),
                )
                await asyncio.sleep(delay)
            self.watch_restarts += 1

    async def _watch(self, namespace: str | None, rv: str) -> None:
        """Apply the watch's events from `rv` on; each one's resourceVersion becomes the resume point."""
        s = self.settings
        timeout = int(s.watch_timeout * (1 + random.random() / 2))
        stream = self.client.watch(
            self.resource,
            namespace,
            resource_version=rv,
            label_selector=self.label_selector,
            timeout_seconds=timeout,
            read_timeout=s.read_timeout,
        )
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                kind = str(event.get("type") or "")
                obj: Any = event.get("object") or {}
                new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if kind == "BOOKMARK":
                    rv = self._seen[namespace] = new_rv
                    continue
                if kind in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
                    self._apply(kind, obj)
                    rv = self._seen[namespace] = new_rv
