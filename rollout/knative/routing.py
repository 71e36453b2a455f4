"""How Knative turns spec.traffic into status.traffic and into the split its data plane serves (pure).

Facts (knative/serving pkg/reconciler/route/traffic, v1.23):
- A Service's Route gets the Service's traffic with `configurationName: <service>` filled into every entry
  that names no revision (`route_traffic_for_service`).
- Resolution flattens each entry to a revision: a configuration entry takes the Configuration's
  latestReadyRevisionName; entries with the same (tag, revision, latestRevision) are merged (percents
  added); `configurationName` is dropped; each tagged entry gets `url: http://{tag}-{route}.{ns}.{domain}`.
- If any target is missing or not Ready, nothing is reprogrammed: status.traffic and the served split stay
  as they were, and AllTrafficAssigned says why (reason RevisionMissing: Unknown while the revision is still
  coming up, False once it failed). A failure outranks an earlier not-ready target.
- The data plane: the main host splits by percent over all entries (tagged ones included), consolidated
  per revision; each tag's host (or the `Knative-Serving-Tag` header on the main host, when the
  tag-header-based-routing feature is on) goes to that tag's revision; an unknown tag falls through to the
  split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rollout.knative.traffic import TrafficEntry

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class RevisionView:
    """What traffic resolution needs to know about a Revision."""

    name: str
    configuration: str
    ready: ConditionStatus
    service: str = ""  # the serving.knative.dev/service label ("" for a standalone Configuration's)


@dataclass(frozen=True)
class ConfigurationView:
    name: str
    latest_ready_revision: str
    ready: ConditionStatus


@dataclass(frozen=True)
class TargetProblem:
    """Why a Route's traffic could not be assigned: the AllTrafficAssigned condition to set."""

    status: Literal["False", "Unknown"]
    reason: str
    message: str

    @property
    def is_failure(self) -> bool:
        return self.status == "False"


@dataclass(frozen=True)
class TrafficResolution:
    """`traffic` is the new status.traffic, or None when a problem means the old one stays."""

    traffic: list[TrafficEntry] | None
    problem: TargetProblem | None


def route_host(route: str, namespace: str, domain: str) -> str:
    return f"{route}.{namespace}.{domain}"


def tag_host(tag: str, route: str, namespace: str, domain: str) -> str:
    """Knative's default tag template `{{.Tag}}-{{.Name}}` inside the domain template."""
    return f"{tag}-{route}.{namespace}.{domain}"


def cluster_local_host(route: str, namespace: str) -> str:
    return f"{route}.{namespace}.svc.cluster.local"


def route_traffic_for_service(
    service_traffic: Sequence[Mapping[str, Any]], configuration: str
) -> list[TrafficEntry]:
    """The spec.traffic Knative writes on a Service's Route (every unpinned entry follows the Service's
    Configuration)."""
    result: list[TrafficEntry] = []
    for entry in service_traffic:
        copied: dict[str, Any] = dict(entry)
        if not copied.get("revisionName") and not copied.get("configurationName"):
            copied["configurationName"] = configuration
        result.append(copied)  # type: ignore[arg-type]
    return result


def resolve_traffic(
    spec_traffic: Sequence[Mapping[str, Any]],
    *,
    route: str,
    namespace: str,
    domain: str,
    revisions: Mapping[str, RevisionView],
    configurations: Mapping[str, ConfigurationView],
    owner_service: str = "",
) -> TrafficResolution:
    """Resolve a Route's (defaulted, valid) spec.traffic against the revisions and configurations that
    exist. `owner_service` is the Service owning the Route ("" for a standalone Route): since Knative 1.21
    such a Route may only reference that Service's revisions."""
    problem: TargetProblem | None = None
    flattened: list[TrafficEntry] = []

    def defer(found: TargetProblem) -> None:
        nonlocal problem
        if problem is None or found.is_failure:
            problem = found

    for entry in spec_traffic:
        revision_name = entry.get("revisionName") or ""
        configuration_name = entry.get("configurationName") or ""
        if revision_name:
            found = _revision_problem(revisions.get(revision_name), revision_name, owner_service)
        elif configuration_name:
            config = configurations.get(configuration_name)
            found = _configuration_problem(config, configuration_name)
            if found is None and config is not None:
                revision_name = config.latest_ready_revision
                if revision_name not in revisions:
                    found = _missing("Revision", revision_name)
        else:
            continue  # not valid in a Route; validation rejects it
        if found is not None:
            defer(found)
            continue
        resolved = TrafficEntry(revisionName=revision_name, latestRevision=bool(entry.get("latestRevision")))
        if entry.get("tag"):
            resolved["tag"] = str(entry["tag"])
        if entry.get("percent") is not None:
            resolved["percent"] = int(entry["percent"])
        _merge_into(flattened, resolved)
    if problem is not None:
        return TrafficResolution(traffic=None, problem=problem)
    for resolved in flattened:
        if resolved.get("tag"):
            resolved["url"] = "http://" + tag_host(resolved["tag"], route, namespace, domain)
    return TrafficResolution(traffic=flattened, problem=None)


def _merge_into(flattened: list[TrafficEntry], entry: TrafficEntry) -> None:
    for existing in flattened:
        if (
            existing.get("tag", "") == entry.get("tag", "")
            and existing["revisionName"] == entry["revisionName"]
            and existing.get("latestRevision") == entry.get("latestRevision")
        ):
            if "percent" in entry or "percent" in existing:
                existing["percent"] = existing.get("percent", 0) + entry.get("percent", 0)
            return
    flattened.append(entry)


def _missing(kind: str, name: str) -> TargetProblem:
    return TargetProblem("False", f"{kind}Missing", f'{kind} "{name}" referenced in traffic not found.')


def _revision_problem(revision: RevisionView | None, name: str, owner_service: str) -> TargetProblem | None:
    if revision is None:
        return _missing("Revision", name)
    if owner_service and revision.service != owner_service:
        return TargetProblem(
            "False",
            "RevisionNotOwned",
            f'Revision "{name}" is not owned by Service "{owner_service}".',
        )
    if revision.ready == "True":
        return None
    if revision.ready == "False":
        return TargetProblem("False", "RevisionMissing", f'Revision "{name}" failed to become ready.')
    return TargetProblem("Unknown", "RevisionMissing", f'Revision "{name}" is not yet ready.')


def _configuration_problem(config: ConfigurationView | None, name: str) -> TargetProblem | None:
    if config is None:
        return _missing("Configuration", name)
    if config.latest_ready_revision:
        return None
    if config.ready == "False":
        return TargetProblem(
            "False", "RevisionMissing", f'Configuration "{name}" does not have any ready Revision.'
        )
    return TargetProblem(
        "Unknown", "RevisionMissing", f'Configuration "{name}" is waiting for a Revision to become ready.'
    )


# --- the data plane -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedTraffic:
    """What the ingress serves: the main host's split (revision, percent) and each tag's revision."""

    split: tuple[tuple[str, int], ...]
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def revisions(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.split) | frozenset(self.tags.values())


def served_traffic(status_traffic: Sequence[Mapping[str, Any]]) -> ServedTraffic:
    """The data-plane split of a Route whose status.traffic is `status_traffic`."""
    percents: dict[str, int] = {}
    tags: dict[str, str] = {}
    for entry in status_traffic:
        name = str(entry.get("revisionName") or "")
        if not name:
            continue
        percents[name] = percents.get(name, 0) + int(entry.get("percent") or 0)
        if entry.get("tag"):
            tags[str(entry["tag"])] = name
    if len(percents) == 1:
        percents = dict.fromkeys(percents, 100)
    return ServedTraffic(split=tuple(percents.items()), tags=tags)


def pick_revision(
    served: ServedTraffic,
    *,
    u: float,
    tag: str | None = None,
    tag_header_routing: bool = True,
) -> str | None:
    """The revision a request reaches. `u` is a uniform number in [0, 1) (the caller's randomness);
    `tag` is the request's Knative-Serving-Tag header (or the tag of the tag host it was sent to)."""
    if tag and tag_header_routing and tag in served.tags:
        return served.tags[tag]
    total = sum(percent for _, percent in served.split)
    if total <= 0:
        return None
    point = u * total
    cumulative = 0
    for name, percent in served.split:
        cumulative += percent
        if point < cumulative:
            return name
    return served.split[-1][0]
