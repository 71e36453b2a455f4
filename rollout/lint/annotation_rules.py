"""Annotation rules for Knative objects: the autoscaling annotations (catalogue and value rules in
rollout.knative.autoscaling) and Knative's own `serving.knative.dev/rollout-duration`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from rollout.knative.autoscaling import (
    BY_LEGACY,
    BY_NAME,
    PREFIX,
    lookup,
    parse_go_duration,
    validate_annotations,
)
from rollout.lint.findings import Issue, Path, error, warning

ROLLOUT_DURATION = "serving.knative.dev/rollout-duration"
ROLLOUT_DURATION_LEGACY = "serving.knative.dev/rolloutDuration"


def _strings(annotations: Any) -> dict[str, str]:
    if not isinstance(annotations, Mapping):
        return {}
    return {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}


def template_annotation_issues(annotations: Any, path: Path) -> list[Issue]:
    """Autoscaling annotations of a Revision template (`spec.template.metadata.annotations`)."""
    values = _strings(annotations)
    issues: list[Issue] = []
    for key in values:
        if not key.startswith(PREFIX):
            continue
        found = lookup(key)
        entry = found.annotation
        if entry is None:
            issues.append(_unknown(key, (*path, key)))
        elif found.legacy:
            if entry.key in values:
                issues.append(
                    warning(
                        "autoscaling/legacy-name",
                        (*path, key),
                        f"{key} is ignored: {entry.key} is also set and takes precedence",
                        f"remove {key}",
                    )
                )
            else:
                issues.append(
                    warning(
                        "autoscaling/legacy-name",
                        (*path, key),
                        f"{key} is a legacy spelling that Knative reads only for compatibility",
                        f"rename it to {entry.key}",
                    )
                )
    for problem in validate_annotations(values):
        issues.append(error("autoscaling/invalid-value", (*path, problem.key), problem.message, problem.hint))
    return issues


def _unknown(key: str, path: Path) -> Issue:
    name = key.removeprefix(PREFIX)
    candidates = {n: n for n in BY_NAME} | {legacy: entry.name for legacy, entry in BY_LEGACY.items()}
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    hint = (
        f"did you mean {PREFIX}{candidates[close[0]]}?"
        if close
        else "known annotations: " + ", ".join(sorted(BY_NAME))
    )
    return error(
        "autoscaling/unknown-name",
        path,
        f"{key} is not an autoscaling annotation: Knative accepts it and ignores it",
        hint,
    )


def object_annotation_issues(annotations: Any, path: Path, kind: str) -> list[Issue]:
    """Autoscaling annotations on a Service's, Configuration's or Route's own metadata, where they do
    nothing: Knative's webhook rejects them on a Service or Configuration and ignores them on a Route."""
    issues: list[Issue] = []
    for key in _strings(annotations):
        if not key.startswith(PREFIX):
            continue
        if kind == "Route":
            issues.append(
                warning(
                    "autoscaling/wrong-place",
                    (*path, key),
                    f"{key} has no effect on a Route: autoscaling is set per Revision",
                    "put it in the Service's or Configuration's spec.template.metadata.annotations",
                )
            )
        else:
            issues.append(
                error(
                    "autoscaling/wrong-place",
                    (*path, key),
                    'autoscaling annotations must be put under "spec.template.metadata.annotations" to work',
                    f"move {key} to spec.template.metadata.annotations",
                )
            )
    return issues


def rollout_duration_issues(annotations: Any, path: Path) -> list[Issue]:
    """Knative's rule for `serving.knative.dev/rollout-duration` (Service or Route metadata)."""
    values = _strings(annotations)
    issues: list[Issue] = []
    key = ROLLOUT_DURATION if ROLLOUT_DURATION in values else ROLLOUT_DURATION_LEGACY
    if key not in values:
        return issues
    if key == ROLLOUT_DURATION_LEGACY:
        issues.append(
            warning(
                "knative/legacy-annotation",
                (*path, key),
                f"{key} is a legacy spelling",
                f"rename it to {ROLLOUT_DURATION}",
            )
        )
    text = values[key]
    seconds = parse_go_duration(text)
    if seconds is None:
        issues.append(
            error("knative/rollout-duration", (*path, key), f"invalid value: {text}", 'e.g. "300s"')
        )
    elif seconds != round(seconds):
        issues.append(
            error(
                "knative/rollout-duration",
                (*path, key),
                f"rollout-duration={text} is not at second precision",
                "use whole seconds",
            )
        )
    elif seconds < 0:
        issues.append(
            error(
                "knative/rollout-duration",
                (*path, key),
                f"rollout-duration={text} must be positive",
                'use a duration such as "300s"',
            )
        )
    return issues
