"""The `autoscaling.knative.dev/*` annotations of a Revision template, and the value rules Knative's
webhook applies to them (knative/serving pkg/apis/autoscaling, v1.23; see ../shared/research/knative.md).

Facts this module encodes:
- Each annotation has a canonical kebab-case name; several also have a legacy camelCase spelling that
  Knative still reads when the canonical one is absent (`minScale` for `min-scale`, ...). When both are
  written, the canonical one wins and the legacy one is ignored.
- They act only on `spec.template.metadata.annotations` (Revision template) of a Service or Configuration.
  Knative's webhook REJECTS them on a Service's or Configuration's own `metadata.annotations`
  ("autoscaling annotations must be put under spec.template.metadata.annotations to work").
- Knative does not reject names it does not know (a typo such as `scaleUpDelay` is accepted and does
  nothing); `rollout lint` reports them.
- Values are strings; their formats and bounds are below (`validate_annotations`). Limits that depend on
  the cluster's config-autoscaler (max-scale-limit, allow-zero-initial-scale) are not known here.

Pure functions, shared by `rollout lint` and anything that stands in for Knative's webhook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from rollout.api.durations import DurationError, parse_duration

PREFIX = "autoscaling.knative.dev/"
KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
KNATIVE_CLASS_SUFFIX = ".knative.dev"
WINDOW_MIN_SECONDS = 6.0
WINDOW_MAX_SECONDS = 3600.0
TARGET_MIN = 0.01
INT32_MAX = 2**31 - 1


class ValueKind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    DURATION = "duration"
    CHOICE = "choice"


@dataclass(frozen=True)
class AutoscalingAnnotation:
    name: str  # canonical, without the prefix
    legacy: tuple[str, ...]  # older spellings Knative still reads, without the prefix
    kind: ValueKind
    default: str
    summary: str

    @property
    def key(self) -> str:
        return PREFIX + self.name


CATALOGUE: tuple[AutoscalingAnnotation, ...] = (
    AutoscalingAnnotation("class", (), ValueKind.CHOICE, KPA, f"autoscaler class: {KPA} or {HPA}"),
    AutoscalingAnnotation(
        "metric", (), ValueKind.CHOICE, "concurrency", "KPA: concurrency or rps; HPA: cpu, memory or custom"
    ),
    AutoscalingAnnotation("target", (), ValueKind.NUMBER, "100", "target value of the metric per pod"),
    AutoscalingAnnotation(
        "target-utilization-percentage",
        ("targetUtilizationPercentage",),
        ValueKind.NUMBER,
        "70",
        "percent of the target to aim for (1-100)",
    ),
    AutoscalingAnnotation(
        "min-scale", ("minScale",), ValueKind.INTEGER, "0", "fewest pods (0 allows scale to zero)"
    ),
    AutoscalingAnnotation("max-scale", ("maxScale",), ValueKind.INTEGER, "0", "most pods (0 = unlimited)"),
    AutoscalingAnnotation(
        "initial-scale", ("initialScale",), ValueKind.INTEGER, "1", "pods a new revision starts with"
    ),
    AutoscalingAnnotation(
        "activation-scale", (), ValueKind.INTEGER, "1", "pods to scale to when scaling up from zero"
    ),
    AutoscalingAnnotation("window", (), ValueKind.DURATION, "60s", "stable window of the KPA (6s-1h)"),
    AutoscalingAnnotation(
        "panic-window-percentage",
        ("panicWindowPercentage",),
        ValueKind.NUMBER,
        "10",
        "panic window as a percent of the stable window (1-100)",
    ),
    AutoscalingAnnotation(
        "panic-threshold-percentage",
        ("panicThresholdPercentage",),
        ValueKind.NUMBER,
        "200",
        "load, as a percent of the target, that starts panic mode (110-1000)",
    ),
    AutoscalingAnnotation(
        "scale-down-delay", ("scaleDownDelay",), ValueKind.DURATION, "0s", "wait before scaling down (0s-1h)"
    ),
    AutoscalingAnnotation(
        "scale-to-zero-pod-retention-period",
        ("scaleToZeroPodRetentionPeriod",),
        ValueKind.DURATION,
        "0s",
        "keep the last pod this long after deciding to scale to zero (0s-1h)",
    ),
    AutoscalingAnnotation(
        "target-burst-capacity",
        ("targetBurstCapacity",),
        ValueKind.NUMBER,
        "211",
        "spare capacity before the activator stays in the path (-1 = always, 0 = never)",
    ),
    AutoscalingAnnotation(
        "metric-aggregation-algorithm",
        ("metricAggregationAlgorithm",),
        ValueKind.CHOICE,
        "linear",
        "KPA: linear or weighted-exponential",
    ),
)

BY_NAME: dict[str, AutoscalingAnnotation] = {a.name: a for a in CATALOGUE}
BY_LEGACY: dict[str, AutoscalingAnnotation] = {legacy: a for a in CATALOGUE for legacy in a.legacy}


@dataclass(frozen=True)
class Lookup:
    annotation: AutoscalingAnnotation | None  # None: no such annotation
    legacy: bool  # the key is a legacy spelling of `annotation`


def lookup(key: str) -> Lookup:
    """What an `autoscaling.knative.dev/...` key is (the key must carry the prefix)."""
    name = key.removeprefix(PREFIX)
    if name in BY_NAME:
        return Lookup(BY_NAME[name], legacy=False)
    if name in BY_LEGACY:
        return Lookup(BY_LEGACY[name], legacy=True)
    return Lookup(None, legacy=False)


def effective(annotations: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(key, value) Knative reads for a catalogue entry: the canonical key first, then the legacy ones."""
    entry = BY_NAME[name]
    for candidate in (entry.name, *entry.legacy):
        key = PREFIX + candidate
        if key in annotations:
            return key, annotations[key]
    return None


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration (`time.ParseDuration`: `90s`, `1m30s`, `-5s`, `0`), None if not one."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    if not body or body != body.strip():
        return None
    try:
        return sign * parse_duration(body.replace("\u03bcs", "\u00b5s"))
    except DurationError:
        return None


def go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 10, ...): optional sign, decimal digits only."""
    body = text[1:] if text[:1] in "+-" else text
    if not body.isascii() or not body.isdigit():
        return None
    return int(text)


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat: a decimal or scientific number (no underscores, no spaces)."""
    if not text or text != text.strip() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class AnnotationProblem:
    key: str  # the annotation key the problem is about
    message: str
    hint: str


def validate_annotations(annotations: Mapping[str, str]) -> list[AnnotationProblem]:
    """Knative's value rules for the autoscaling annotations of a Revision template (what its webhook
    rejects). Keys are read as Knative reads them (canonical first, then legacy). Values must be strings:
    a non-string value is reported elsewhere (Kubernetes rejects it before Knative sees it)."""
    values = {k: v for k, v in annotations.items() if isinstance(v, str)}
    problems: list[AnnotationProblem] = []
    problems += _class_and_metric(values)
    min_scale = _integer(values, "min-scale", 0, problems)
    max_scale = _integer(values, "max-scale", 0, problems)
    if min_scale is not None and max_scale is not None and max_scale != 0 and max_scale < min_scale:
        key, _ = effective(values, "max-scale") or ("", "")
        problems.append(
            AnnotationProblem(
                key,
                f"max-scale={max_scale} is less than min-scale={min_scale}",
                "raise max-scale (0 means unlimited) or lower min-scale",
            )
        )
    activation = _integer(values, "activation-scale", 1, problems)
    if activation is not None and max_scale and activation > max_scale:
        key, _ = effective(values, "activation-scale") or ("", "")
        problems.append(
            AnnotationProblem(
                key,
                f"max-scale={max_scale} is less than activation-scale={activation}",
                "activation-scale must not exceed max-scale",
            )
        )
    initial = _integer(values, "initial-scale", 0, problems)
    if initial == 0:
        key, _ = effective(values, "initial-scale") or ("", "")
        problems.append(
            AnnotationProblem(
                key,
                "initial-scale=0 is rejected unless the cluster sets allow-zero-initial-scale: true "
                "in config-autoscaler",
                "use 1 or more, or make sure the cluster allows zero",
            )
        )
    _number(values, "target", TARGET_MIN, math.inf, problems)
    _number(values, "target-utilization-percentage", 1, 100, problems)
    _number(values, "panic-window-percentage", 1, 100, problems)
    _number(values, "panic-threshold-percentage", 110, 1000, problems)
    burst = effective(values, "target-burst-capacity")
    if burst is not None:
        value = _go_float(burst[1])
        if value is None or (value < 0 and value != -1):
            problems.append(
                AnnotationProblem(
                    burst[0], f"invalid value: {burst[1]}", "use -1 (unlimited), 0 (off) or a positive number"
                )
            )
    _duration(values, "window", WINDOW_MIN_SECONDS, WINDOW_MAX_SECONDS, problems)
    _duration(values, "scale-down-delay", 0.0, WINDOW_MAX_SECONDS, problems)
    _duration(values, "scale-to-zero-pod-retention-period", 0.0, WINDOW_MAX_SECONDS, problems, whole=False)
    return problems


def _class_and_metric(values: Mapping[str, str]) -> list[AnnotationProblem]:
    problems = []
    found_class = effective(values, "class")
    autoscaler = found_class[1] if found_class else KPA
    if found_class and autoscaler.endswith(KNATIVE_CLASS_SUFFIX) and autoscaler not in (KPA, HPA):
        problems.append(
            AnnotationProblem(found_class[0], f"invalid value: {autoscaler}", f"use {KPA} or {HPA}")
        )
    metric = effective(values, "metric")
    if metric is not None:
        if autoscaler == KPA and metric[1] not in ("concurrency", "rps"):
            problems.append(
                AnnotationProblem(
                    metric[0],
                    f"invalid value: {metric[1]}",
                    f"the KPA scales on concurrency or rps; cpu and memory need class {HPA}",
                )
            )
        elif autoscaler == HPA and not metric[1]:
            problems.append(AnnotationProblem(metric[0], "invalid value: (empty)", "use cpu or memory"))
    algorithm = effective(values, "metric-aggregation-algorithm")
    allowed = ("linear", "weighted-exponential", "weightedExponential")
    if autoscaler == KPA and algorithm is not None and algorithm[1] and algorithm[1] not in allowed:
        problems.append(
            AnnotationProblem(
                algorithm[0], f"invalid value: {algorithm[1]}", "use linear or weighted-exponential"
            )
        )
    return problems


def _integer(values: Mapping[str, str], name: str, low: int, problems: list[AnnotationProblem]) -> int | None:
    found = effective(values, name)
    if found is None:
        return None
    key, text = found
    value = go_int(text)
    if value is None:
        problems.append(AnnotationProblem(key, f"invalid value: {text}", 'write a whole number, e.g. "3"'))
        return None
    if not low <= value <= INT32_MAX:
        problems.append(
            AnnotationProblem(key, f"expected {low} <= {text} <= {INT32_MAX}", BY_NAME[name].summary)
        )
        return None
    return value


def _number(
    values: Mapping[str, str], name: str, low: float, high: float, problems: list[AnnotationProblem]
) -> None:
    found = effective(values, name)
    if found is None:
        return
    key, text = found
    value = _go_float(text)
    if value is None:
        problems.append(AnnotationProblem(key, f"invalid value: {text}", 'write a number, e.g. "70"'))
    elif value < low or value > high:
        message = (
            f"{name} {text} should be at least {low:g}"
            if high == math.inf
            else f"expected {low:g} <= {text} <= {high:g}"
        )
        problems.append(AnnotationProblem(key, message, BY_NAME[name].summary))


def _duration(
    values: Mapping[str, str],
    name: str,
    low: float,
    high: float,
    problems: list[AnnotationProblem],
    *,
    whole: bool = True,
) -> None:
    found = effective(values, name)
    if found is None:
        return
    key, text = found
    seconds = parse_go_duration(text)
    if seconds is None:
        problems.append(
            AnnotationProblem(
                key, f"invalid value: {text}", 'write a duration with a unit, e.g. "90s" or "2m"'
            )
        )
    elif not low <= seconds <= high:
        problems.append(
            AnnotationProblem(key, f"expected {_fmt(low)} <= {text} <= {_fmt(high)}", BY_NAME[name].summary)
        )
    elif whole and seconds != round(seconds):
        problems.append(
            AnnotationProblem(key, "must be specified with at most second precision", "use whole seconds")
        )


def _fmt(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h0m0s"
    return f"{seconds:g}s"
