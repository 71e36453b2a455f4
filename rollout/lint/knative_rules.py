"""Rules for Knative Service, Route and Configuration documents (serving.knative.dev/v1).

Traffic blocks are checked by rollout.knative.traffic (Knative's webhook rules, in Knative's words). This
module adds what the CRD schema would drop or reject (unknown fields, wrong types at the top of the spec,
the revision template's shape), the webhook's rules on revision names and containers, annotations, and
what only matters to knative-rollout (an opted-in object's traffic and rollout-duration).

Field lists are those of the Knative v1.23 CRD schemas; tests compare them with ../shared/knative/crds.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from rollout.api.common import POLICY_LABEL
from rollout.knative.traffic import dns1035_label_errors, validate_traffic
from rollout.lint.annotation_rules import (
    ROLLOUT_DURATION,
    ROLLOUT_DURATION_LEGACY,
    object_annotation_issues,
    rollout_duration_issues,
    template_annotation_issues,
)
from rollout.lint.findings import Issue, Path, error, parse_path, warning
from rollout.lint.manifests import Manifest, get, string_map_issues

GROUP = "serving.knative.dev"
VERSION = "v1"
KINDS = ("Service", "Route", "Configuration")
SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "Service": ("template", "traffic"),
    "Route": ("traffic",),
    "Configuration": ("template",),
}
TEMPLATE_FIELDS = ("metadata", "spec")
POD_SPEC_FIELDS = (
    "affinity",
    "automountServiceAccountToken",
    "containerConcurrency",
    "containers",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "idleTimeoutSeconds",
    "imagePullSecrets",
    "initContainers",
    "nodeSelector",
    "priorityClassName",
    "responseStartTimeoutSeconds",
    "runtimeClassName",
    "schedulerName",
    "securityContext",
    "serviceAccountName",
    "shareProcessNamespace",
    "timeoutSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
)
CONTAINER_FIELDS = (
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "livenessProbe",
    "name",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
    "workingDir",
)
# spec fields of the v1alpha1 API that Knative removed (runLatest, release, pinned, manual).
REMOVED_SPEC_FIELDS = ("runLatest", "release", "pinned", "manual")


def knative_issues(manifest: Manifest) -> list[Issue]:
    kind = manifest.kind or ""
    if manifest.version != VERSION:
        return [
            error(
                "knative/api-version",
                ("apiVersion",),
                f"{manifest.api_version} is not served by Knative Serving 1.x",
                f"use apiVersion: {GROUP}/{VERSION}",
            )
        ]
    issues: list[Issue] = []
    name = manifest.name
    if name is not None:
        problems = dns1035_label_errors(name)
        if problems:
            issues.append(
                error(
                    "knative/name",
                    ("metadata", "name"),
                    f"{kind} name {name!r} is not a DNS-1035 label: {'; '.join(problems)}",
                    "Knative uses the name in host names and Kubernetes Service names: start with a letter, "
                    "use lower-case letters, digits and '-', at most 63 characters",
                )
            )
    spec = manifest.data.get("spec")
    if spec is None and kind == "Route":
        spec = {}
    if not isinstance(spec, Mapping):
        shape = "missing" if spec is None else f"a {type(spec).__name__}, not a mapping"
        return [
            *issues,
            error("knative/spec", ("spec",), f"spec is {shape}", "write spec.template (see examples/)"),
        ]
    issues += _unknown_fields(spec, SPEC_FIELDS[kind], ("spec",), _spec_hint(kind))
    if "template" in SPEC_FIELDS[kind]:
        issues += _template_issues(spec.get("template"), name)
    if "traffic" in SPEC_FIELDS[kind]:
        issues += _traffic_issues(spec.get("traffic"), kind, name, spec)
    issues += _annotation_issues(manifest, kind)
    if kind in ("Service", "Route") and POLICY_LABEL in manifest.labels():
        issues += _opted_in_issues(manifest, spec)
    return issues


def _unknown_fields(
    value: Mapping[str, Any], allowed: tuple[str, ...], path: Path, special: dict[str, str]
) -> list[Issue]:
    issues = []
    for key in value:
        if key in allowed:
            continue
        key_text = str(key)
        hint = special.get(key_text)
        if hint is None:
            close = difflib.get_close_matches(key_text, allowed, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"allowed here: {', '.join(allowed)}"
        issues.append(
            error(
                "knative/unknown-field",
                (*path, key_text),
                f"{key_text!r} is not a field of {'.'.join(str(p) for p in path)} in Knative; "
                "the API server drops or rejects it",
                hint,
            )
        )
    return issues


def _spec_hint(kind: str) -> dict[str, str]:
    hints = dict.fromkeys(
        REMOVED_SPEC_FIELDS,
        "the v1alpha1 API (runLatest, release, pinned, manual) was removed: "
        "write spec.template and spec.traffic",
    )
    hints["containers"] = "containers go under spec.template.spec.containers"
    hints["url"] = "url is status only: Knative fills it in"
    if kind == "Configuration":
        hints["traffic"] = "a Configuration has no traffic: split traffic with a Route, or use a Service"
    if kind == "Route":
        hints["template"] = "a Route has no template: revisions come from a Configuration or a Service"
    return hints


# -- template ----------------------------------------------------------------------------------------------


def _template_issues(template: Any, owner: str | None) -> list[Issue]:
    path: Path = ("spec", "template")
    if template is None:
        return [
            error(
                "knative/template",
                path,
                "spec.template is missing",
                "write spec.template.spec.containers with the image to run",
            )
        ]
    if not isinstance(template, Mapping):
        return [
            error(
                "knative/template",
                path,
                "spec.template must be a mapping",
                "write spec.template.spec.containers",
            )
        ]
    issues = _unknown_fields(
        template, TEMPLATE_FIELDS, path, {"containers": "containers go under spec.template.spec.containers"}
    )
    metadata = template.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        issues.append(
            error(
                "knative/template",
                (*path, "metadata"),
                "metadata must be a mapping",
                "write key: value pairs",
            )
        )
    elif isinstance(metadata, Mapping):
        issues += [_under(issue, path) for issue in string_map_issues(template, ("metadata",))]
        issues += _revision_name_issues(metadata.get("name"), owner, (*path, "metadata", "name"))
        issues += template_annotation_issues(metadata.get("annotations"), (*path, "metadata", "annotations"))
        labels = metadata.get("labels")
        if isinstance(labels, Mapping) and POLICY_LABEL in labels:
            issues.append(
                warning(
                    "rollout/policy-label-place",
                    (*path, "metadata", "labels", POLICY_LABEL),
                    f"{POLICY_LABEL} on the revision template only labels revisions; it does not opt in",
                    "put the label on the metadata.labels of the Service or Route itself",
                )
            )
    issues += _pod_spec_issues(template.get("spec"), (*path, "spec"))
    return issues


def _under(issue: Issue, prefix: Path) -> Issue:
    return Issue(issue.severity, issue.rule, (*prefix, *issue.path), issue.message, issue.hint)


def _revision_name_issues(name: Any, owner: str | None, path: Path) -> list[Issue]:
    if name is None:
        return []
    if not isinstance(name, str):
        return [error("knative/template", path, "the revision name must be a string", "quote it")]
    issues: list[Issue] = []
    problems = dns1035_label_errors(name)
    if problems:
        issues.append(
            error(
                "knative/revision-name",
                path,
                f"invalid value: not a DNS 1035 label: {problems}",
                "start with a letter; use lower-case letters, digits and '-'",
            )
        )
    if owner is not None and not name.startswith(owner + "-"):
        issues.append(
            error(
                "knative/revision-name",
                path,
                f'"{name}" must have prefix "{owner}-"',
                f"name revisions {owner}-<suffix>, e.g. {owner}-v2; or remove the name and let Knative "
                "number them",
            )
        )
    return issues


def _pod_spec_issues(pod: Any, path: Path) -> list[Issue]:
    if not isinstance(pod, Mapping):
        return [
            error(
                "knative/containers",
                (*path, "containers") if pod is None else path,
                "missing field(s): containers" if pod is None else "spec.template.spec must be a mapping",
                "add spec.template.spec.containers with one container and its image",
            )
        ]
    issues = _unknown_fields(pod, POD_SPEC_FIELDS, path, {})
    containers = pod.get("containers")
    where: Path = (*path, "containers")
    if not isinstance(containers, list) or not containers:
        shape = "missing" if containers is None else "empty" if containers == [] else "not a list"
        return [
            *issues,
            error("knative/containers", where, f"containers is {shape}", "list one container with its image"),
        ]
    with_ports = 0
    for index, container in enumerate(containers):
        item: Path = (*where, index)
        if not isinstance(container, Mapping):
            issues.append(
                error(
                    "knative/containers",
                    item,
                    "a container must be a mapping",
                    "write image: ... and its other fields",
                )
            )
            continue
        issues += _unknown_fields(
            container, CONTAINER_FIELDS, item, {"lifecycle": "Knative does not allow lifecycle hooks"}
        )
        image = container.get("image")
        if not isinstance(image, str) or not image:
            issues.append(
                error("knative/containers", (*item, "image"), "missing field(s): image", "set the image")
            )
        ports = container.get("ports")
        if isinstance(ports, list) and ports:
            with_ports += 1
            if len(ports) > 1:
                issues.append(
                    error(
                        "knative/containers",
                        (*item, "ports"),
                        "more than one container port is set",
                        "Knative routes to exactly one port per revision: keep one entry",
                    )
                )
    if len(containers) > 1 and with_ports != 1:
        issues.append(
            error(
                "knative/containers",
                where,
                f"exactly one container must list a port when there are several (found {with_ports})",
                "give the serving container `ports: [{containerPort: 8080}]` and no port to the sidecars",
            )
        )
    return issues


# -- traffic -------------------------------------------------------------------------------------------


def _traffic_issues(traffic: Any, kind: str, name: str | None, spec: Mapping[str, Any]) -> list[Issue]:
    in_service = kind == "Service"
    if in_service and "traffic" not in spec:
        return []
    issues: list[Issue] = []
    for finding in validate_traffic(traffic, in_service=in_service):
        path = parse_path(finding.field)
        hint = finding.hint
        if path[-1:] == ("url",) and isinstance(get(traffic, *path[2:]), Mapping):
            hint = (
                "there is no url in a traffic entry, and Knative has no path routing: traffic is split by "
                "percent, reached by tag URL or the Knative-Serving-Tag header; custom domains are "
                "DomainMapping objects"
            )
        issues.append(error(f"knative/{finding.rule}", path, finding.message, hint))
    if in_service and name is not None and isinstance(traffic, list):
        for index, entry in enumerate(traffic):
            revision = entry.get("revisionName") if isinstance(entry, Mapping) else None
            if isinstance(revision, str) and revision and not revision.startswith(name + "-"):
                issues.append(
                    error(
                        "knative/foreign-revision",
                        ("spec", "traffic", index, "revisionName"),
                        f"revision {revision!r} cannot belong to Service {name!r}: its revisions are named "
                        f"{name}-00001, {name}-00002, ... or {name}-<suffix> when named in the template",
                        "since Knative 1.21 a Service's traffic may only name its own revisions; "
                        "to split across services use a Route over Configurations",
                    )
                )
    return issues


# -- annotations and opt-in --------------------------------------------------------------------------


def _annotation_issues(manifest: Manifest, kind: str) -> list[Issue]:
    annotations = get(manifest.data, "metadata", "annotations")
    path: Path = ("metadata", "annotations")
    issues = object_annotation_issues(annotations, path, kind)
    if kind in ("Service", "Route"):
        issues += rollout_duration_issues(annotations, path)
    if (
        isinstance(annotations, Mapping)
        and POLICY_LABEL in annotations
        and POLICY_LABEL not in manifest.labels()
    ):
        issues.append(
            warning(
                "rollout/policy-label-place",
                (*path, POLICY_LABEL),
                f"{POLICY_LABEL} is a label, not an annotation: this {kind} does not opt in",
                "move it to metadata.labels",
            )
        )
    return issues


def _opted_in_issues(manifest: Manifest, spec: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    annotations = manifest.annotations()
    for key in (ROLLOUT_DURATION, ROLLOUT_DURATION_LEGACY):
        if key in annotations:
            issues.append(
                warning(
                    "rollout/rollout-duration",
                    ("metadata", "annotations", key),
                    "Knative's own time-based rollout and knative-rollout would both move this object's traffic",
                    f"remove {key}: the policy decides how traffic moves",
                )
            )
    if manifest.kind == "Service" and "traffic" in spec:
        issues.append(
            warning(
                "rollout/traffic-in-git",
                ("spec", "traffic"),
                "this Service opts in to knative-rollout, which writes spec.traffic during rollouts; a traffic "
                "block kept in git is re-applied by your GitOps tool and fights it",
                "leave spec.traffic out of git, the controller pins it; or make your GitOps tool ignore "
                "/spec/traffic",
            )
        )
    return issues
