"""Standalone Routes: the one Configuration a Route's traffic follows. A Route is managed only when there is
exactly one — named by its entries (`configurationName`), or owning the revisions they name, or (during a
rollout) owning the rollout's revisions — since its `latest` entry must name it. Pure, over a lookup of a
revision's Configuration (the revisions cache)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollout.controller.caches import Caches
from rollout.controller.views import CONFIGURATION_LABEL, meta

ConfigurationOf = Callable[[str], str | None]  # revision name -> its Configuration (None: not known)


@dataclass(frozen=True)
class RouteConfiguration:
    name: str | None
    problem: str | None = None  # why there is no single one (the Route is then left alone)


def route_configuration(
    entries: Sequence[Mapping[str, Any]],
    configuration_of: ConfigurationOf,
    rollout_revisions: Sequence[str] = (),
) -> RouteConfiguration:
    """The Configuration the Route follows. `rollout_revisions` (candidate, stable of a running rollout)
    decide when given: the rollout moves traffic within their Configuration whatever spec.traffic holds
    now (someone may have rewritten it: that is drift, to be undone)."""
    for revision in rollout_revisions:
        found = configuration_of(revision)
        if found:
            return RouteConfiguration(found)
    configs = {str(e["configurationName"]) for e in entries if e.get("configurationName")}
    unknown = []
    for entry in entries:
        revision = str(entry.get("revisionName") or "")
        if not revision:
            continue
        found = configuration_of(revision)
        if found:
            configs.add(found)
        else:
            unknown.append(revision)
    if len(configs) == 1:
        return RouteConfiguration(next(iter(configs)))
    if configs:
        why = f"its traffic follows {len(configs)} Configurations ({', '.join(sorted(configs))})"
    elif unknown:
        why = f"it names no revision of a known Configuration ({', '.join(unknown)})"
    else:
        why = "its traffic names no Configuration or revision"
    return RouteConfiguration(
        None,
        f"a standalone Route is managed when its traffic follows one Configuration (named by its entries or "
        f"owning the revisions they name); {why}, so its traffic is left alone",
    )


def cached_configuration_of(caches: Caches, namespace: str) -> ConfigurationOf:
    """The revisions cache as a ConfigurationOf (the `serving.knative.dev/configuration` label)."""

    def configuration_of(revision: str) -> str | None:
        rev = caches.revisions.get(namespace, revision)
        label = (meta(rev).get("labels") or {}).get(CONFIGURATION_LABEL) if rev is not None else None
        return str(label) if label else None

    return configuration_of
