"""The soak's invariant checker (bench/soak.py): pure functions over what the soak recorded, namely every
version of every Rollout the sandbox committed (its watch log), every split the sandbox's Knative served,
and what each rollout's scenario deserves. Kept apart from the run so that tests can feed it logs that
break each invariant."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# The reasons of transitions that analysis makes (a step ended, or the last one did and promotion starts).
ANALYSIS_ADVANCES = frozenset({"StepAdvanced", "AnalysisPassed"})


@dataclass(frozen=True)
class Version:
    """One committed version of a Rollout (its wire form), in commit order."""

    seq: int
    obj: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.obj.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.obj.get("status") or {}

    @property
    def target(self) -> str:
        return str((self.spec.get("target") or {}).get("name"))


@dataclass(frozen=True)
class Served:
    service: str
    percents: Mapping[str, int]


@dataclass(frozen=True)
class Expectation:
    """What a rollout (by name) deserves: its scenario and the phases that end it correctly."""

    scenario: str
    phases: frozenset[str]


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (scenario, final phase)

    def add(self, kind: str, detail: str) -> None:
        self.violations.append(f"{kind}: {detail}")

    def by_kind(self) -> Counter[str]:
        return Counter(v.split(":", 1)[0] for v in self.violations)


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def allowed_splits(stable: str, candidate: str, weights: Iterable[int]) -> list[dict[str, int]]:
    return [
        {stable: 100},
        *({stable: 100 - w, candidate: w} for w in weights if 0 < w < 100),
        {candidate: 100},
    ]


def _weights(spec: Mapping[str, Any]) -> list[int]:
    strategy = ((spec.get("policy") or {}).get("spec") or {}).get("strategy") or {}
    canary = strategy.get("canary") or {}
    return [int(s["weight"]) for s in canary.get("steps") or [] if s.get("weight") is not None]


def check_served(served: Sequence[Served], versions: Sequence[Version], initial: Mapping[str, str]) -> Report:
    """Every split served is the stable alone, a step of one of the service's rollouts, or its candidate
    alone (`initial`: service -> the revision it served before any rollout)."""
    report = Report()
    allowed: dict[str, list[dict[str, int]]] = defaultdict(list)
    for service, revision in initial.items():
        allowed[service].append({revision: 100})
    for v in versions:
        spec = v.spec
        allowed[v.target] += allowed_splits(spec["stableRevision"], spec["candidateRevision"], _weights(spec))
    for s in served:
        if dict(s.percents) not in allowed[s.service]:
            report.add("split-outside-plan", f"{s.service} served {dict(s.percents)}")
    return report


def _gating(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in status.get("analysis") or [] if not m.get("dryRun")]


def _backing_problem(
    before: Mapping[str, Any], after: Mapping[str, Any], bake: float, interval: float
) -> str | None:
    """Why the analysis in `after` (the status that advanced) does not back ending the step `before` ran."""
    started = _time(before.get("stepStartedAt"))
    if started is None:
        return "the step had not started (its traffic was never served)"
    metrics = _gating(after)
    if not metrics:
        return "no analysis results"
    for m in metrics:
        measured, data, errored = (
            _time(m.get("measuredAt")),
            _time(m.get("lastDataAt")),
            _time(m.get("erroredAt")),
        )
        if m.get("verdict") != "Pass":
            return f"{m.get('name')} was {m.get('verdict')}"
        if measured is None or measured <= started:
            return f"{m.get('name')} was not measured in this step"
        if data is None or data < measured:
            return f"{m.get('name')}'s last window had no data"
        if errored is not None and errored >= measured:
            return f"{m.get('name')}'s last window failed to measure"
        ended_early = m.get("noWorse") is True
        if not ended_early and measured < started + timedelta(seconds=bake - interval):
            return f"{m.get('name')}'s last window ended before the bake's last interval"
    return None


def _step_bake(spec: Mapping[str, Any], index: int) -> tuple[float, float]:
    policy = (spec.get("policy") or {}).get("spec") or {}
    steps = ((policy.get("strategy") or {}).get("canary") or {}).get("steps") or []
    bake = _seconds(steps[index].get("bake", "0s")) if index < len(steps) else 0.0
    return bake, _seconds((policy.get("analysis") or {}).get("interval", "30s"))


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"not a simple duration: {text!r}")


def check_versions(versions: Sequence[Version], expected: Mapping[str, Expectation]) -> Report:
    """Step advances and promotions backed by fresh passing windows; one running Rollout per target at a
    time, attempt 1 only; every rollout ends in a phase its scenario deserves."""
    report = Report()
    last: dict[str, Version] = {}
    running: dict[str, str] = {}  # target -> the Rollout running on it
    for v in sorted(versions, key=lambda x: x.seq):
        before = last.get(v.name)
        status, phase = v.status, v.status.get("phase", "Pending")
        if int(v.spec.get("attempt", 1)) != 1:
            report.add(
                "duplicate-rollout", f"{v.name} is attempt {v.spec.get('attempt')} (no retry was asked)"
            )
        other = running.get(v.target)
        if phase not in TERMINAL and other is not None and other != v.name and before is None:
            report.add("duplicate-rollout", f"{v.name} started while {other} still runs on {v.target}")
        if phase in TERMINAL:
            if running.get(v.target) == v.name:
                del running[v.target]
        elif before is None or before.status.get("phase") not in TERMINAL:
            running.setdefault(v.target, v.name)
        if before is not None and _advanced(before.status, status):
            bake, interval = _step_bake(v.spec, int(before.status.get("currentStep", 0)))
            problem = _backing_problem(before.status, status, bake, interval)
            if problem is not None:
                report.add(
                    "unbacked-advance", f"{v.name} left step {before.status.get('currentStep')}: {problem}"
                )
        last[v.name] = v
    for name, v in last.items():
        want = expected.get(name)
        phase = str(v.status.get("phase", "Pending"))
        scenario = want.scenario if want is not None else "unexpected"
        report.outcomes[(scenario, phase)] += 1
        if want is None:
            report.add("unexpected-rollout", f"{name} ({phase})")
        elif phase not in want.phases:
            report.add(
                "wrong-verdict",
                f"{name} ({want.scenario}) ended {phase}: {v.status.get('message', '')[:160]}",
            )
    for name in sorted(set(expected) - set(last)):
        report.add("missing-rollout", f"{name} ({expected[name].scenario}) never appeared")
    return report


TERMINAL = frozenset({"Succeeded", "RolledBack", "Failed", "Aborted", "Superseded"})


def _advanced(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """`after` is the status that ended the step `before` was at, by analysis."""
    if before.get("phase") != "Progressing" or after.get("reason") not in ANALYSIS_ADVANCES:
        return False
    return (
        int(after.get("currentStep", 0)) > int(before.get("currentStep", 0))
        or after.get("phase") == "Promoting"
    )


def merge(*reports: Report) -> Report:
    out = Report()
    for r in reports:
        out.violations += r.violations
        out.outcomes.update(r.outcomes)
    return out
