"""Rules across the linted set: duplicate objects, Knative objects whose names collide, and the
`knrollout.dev/policy` label pointing at a RolloutPolicy that exists.

Namespaces: an object without `metadata.namespace` is applied to whatever namespace the pipeline chooses,
so it matches an object in any namespace when looking up a policy; duplicates and collisions are only
reported within one namespace (both unset, or equal)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from rollout.api.common import GROUP, POLICY_LABEL
from rollout.lint.findings import Issue, error, warning
from rollout.lint.knative_rules import GROUP as KNATIVE_GROUP
from rollout.lint.manifests import Manifest

POLICY_KIND = "RolloutPolicy"


def _same_namespace(a: Manifest, b: Manifest) -> bool:
    return a.namespace == b.namespace


def _namespaces_may_match(a: Manifest, b: Manifest) -> bool:
    return a.namespace is None or b.namespace is None or a.namespace == b.namespace


def _where(manifest: Manifest) -> str:
    return f"{manifest.file}:{manifest.locate(('metadata', 'name')).line}"


def cross_issues(manifests: Sequence[Manifest]) -> list[tuple[Manifest, Issue]]:
    ours = [m for m in manifests if m.group in (GROUP, KNATIVE_GROUP) and m.kind and m.name]
    found: list[tuple[Manifest, Issue]] = []
    found += _duplicates(ours)
    found += _collisions([m for m in ours if m.group == KNATIVE_GROUP])
    found += _policy_labels(manifests, [m for m in ours if m.group == GROUP and m.kind == POLICY_KIND])
    return found


def _duplicates(manifests: Sequence[Manifest]) -> list[tuple[Manifest, Issue]]:
    first: dict[tuple[str, str, str, str], Manifest] = {}
    found = []
    for manifest in manifests:
        key = (manifest.group, manifest.kind or "", manifest.namespace or "", manifest.name or "")
        if key not in first:
            first[key] = manifest
            continue
        found.append(
            (
                manifest,
                error(
                    "manifest/duplicate",
                    ("metadata", "name"),
                    f"{manifest.kind} {manifest.name!r} is also defined at {_where(first[key])}",
                    "the one applied last silently replaces the other: rename or remove one",
                ),
            )
        )
    return found


def _collisions(knative: Sequence[Manifest]) -> list[tuple[Manifest, Issue]]:
    services = [m for m in knative if m.kind == "Service"]
    found = []
    for manifest in knative:
        if manifest.kind not in ("Route", "Configuration"):
            continue
        for service in services:
            if service.name == manifest.name and _same_namespace(service, manifest):
                found.append(
                    (
                        manifest,
                        error(
                            "knative/name-collision",
                            ("metadata", "name"),
                            f"Service {service.name!r} ({_where(service)}) owns a {manifest.kind} of the same "
                            f"name; this standalone {manifest.kind} conflicts with it",
                            f"rename the {manifest.kind}, or drop it and use the Service's own",
                        ),
                    )
                )
    return found


def _policy_labels(
    manifests: Sequence[Manifest], policies: Sequence[Manifest]
) -> list[tuple[Manifest, Issue]]:
    found = []
    for manifest in manifests:
        if manifest.group != KNATIVE_GROUP:
            continue
        wanted = manifest.labels().get(POLICY_LABEL)
        if wanted is None:
            continue
        path = ("metadata", "labels", POLICY_LABEL)
        if manifest.kind == "Configuration":
            found.append(
                (
                    manifest,
                    warning(
                        "rollout/policy-label-place",
                        path,
                        "a Configuration does not opt in: rollouts move traffic, which lives on a Service or Route",
                        "put the label on the Route that splits this Configuration's traffic",
                    ),
                )
            )
            continue
        if manifest.kind not in ("Service", "Route"):
            continue
        if any(p.name == wanted and _namespaces_may_match(p, manifest) for p in policies):
            continue
        reachable = sorted({p.name or "" for p in policies if _namespaces_may_match(p, manifest)})
        close = difflib.get_close_matches(wanted, reachable, n=1, cutoff=0.6)
        namespace = f" in namespace {manifest.namespace!r}" if manifest.namespace else ""
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else (
                f"policies in the linted files: {', '.join(reachable)}"
                if reachable
                else "lint the policy together with this object, e.g. `rollout lint policies/ app/`"
            )
        )
        found.append(
            (
                manifest,
                error(
                    "rollout/policy-not-found",
                    path,
                    f"no RolloutPolicy {wanted!r}{namespace} in the linted files: the controller would not "
                    f"roll this {manifest.kind} out",
                    hint,
                ),
            )
        )
    return found
