"""How simulated traffic behaves, read from `sandbox.knrollout.dev/*` annotations (documented, with
defaults, in docs/sandbox.md):

- on a Service's spec.template.metadata.annotations, so they land on each Revision (a new "version" is a
  template change that also sets its behaviour): `error-rate`, `error-code`, `latency-median`,
  `latency-sigma`, `latency-tail-share`, `latency-tail`, `activator-capacity` (and `cold-start`,
  `ready-delay`, `fail`, `fail-message`, which the Knative simulator reads);
- on a Service's own metadata.annotations (its load): `rps`, `diurnal-amplitude`, `diurnal-period`,
  `tag-traffic` (e.g. `canary=0.1,blue=0.05`: shares of requests sent with `Knative-Serving-Tag`).

Unparseable values fall back to the default and are reported as problems (the generator logs them once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rollout.api.durations import DurationError, parse_duration
from rollout_lab.sandbox.knative.names import SANDBOX_PREFIX


@dataclass(frozen=True)
class RevisionBehaviour:
    error_rate: float = 0.0
    error_code: int = 500
    latency_median: float = 0.05
    latency_sigma: float = 0.4
    tail_share: float = 0.0
    tail_latency: float = 0.0
    activator_capacity: int = 100


@dataclass(frozen=True)
class ServiceLoad:
    rps: float
    diurnal_amplitude: float
    diurnal_period: float = 86400.0
    tag_traffic: Mapping[str, float] = field(default_factory=dict)


class _Reader:
    def __init__(self, annotations: Mapping[str, str] | None) -> None:
        self.annotations = annotations or {}
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        return self.annotations.get(SANDBOX_PREFIX + name)

    def number(self, name: str, default: float, lo: float = 0.0, hi: float = float("inf")) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:
            self.problems.append(f"{SANDBOX_PREFIX}{name}={raw!r}: want a number in [{lo:g}, {hi:g}]")
            return default
        return value

    def duration(self, name: str, default: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse_duration(raw)
        except DurationError as err:
            self.problems.append(f"{SANDBOX_PREFIX}{name}: {err}")
            return default

    def shares(self, name: str) -> dict[str, float]:
        raw = self._raw(name)
        if not raw:
            return {}
        result: dict[str, float] = {}
        for part in raw.split(","):
            tag, _, share = part.strip().partition("=")
            try:
                value = float(share)
            except ValueError:
                value = -1.0
            if not tag or not 0.0 <= value <= 1.0:
                self.problems.append(
                    f"{SANDBOX_PREFIX}{name}: {part.strip()!r} is not TAG=SHARE with SHARE in [0, 1]"
                )
                continue
            result[tag.strip()] = value
        if sum(result.values()) > 1.0:
            self.problems.append(f"{SANDBOX_PREFIX}{name}: shares add up to more than 1")
            return {}
        return result


def revision_behaviour(annotations: Mapping[str, str] | None) -> tuple[RevisionBehaviour, list[str]]:
    read = _Reader(annotations)
    behaviour = RevisionBehaviour(
        error_rate=read.number("error-rate", 0.0, 0.0, 1.0),
        error_code=int(read.number("error-code", 500, 100, 599)),
        latency_median=read.duration("latency-median", 0.05),
        latency_sigma=read.number("latency-sigma", 0.4, 0.0, 5.0),
        tail_share=read.number("latency-tail-share", 0.0, 0.0, 1.0),
        tail_latency=read.duration("latency-tail", 0.0),
        activator_capacity=int(read.number("activator-capacity", 100, 0, 1e9)),
    )
    return behaviour, read.problems


def service_load(
    annotations: Mapping[str, str] | None, *, default_rps: float, default_amplitude: float
) -> tuple[ServiceLoad, list[str]]:
    read = _Reader(annotations)
    load = ServiceLoad(
        rps=read.number("rps", default_rps, 0.0, 1e6),
        diurnal_amplitude=read.number("diurnal-amplitude", default_amplitude, 0.0, 1.0),
        diurnal_period=read.duration("diurnal-period", 86400.0) or 86400.0,
        tag_traffic=read.shares("tag-traffic"),
    )
    return load, read.problems
