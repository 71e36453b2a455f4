"""What `rollout demo` prints: one line per change of a rollout (phase, step, weight, each metric against its
threshold and stable), and the closing summary. Pure functions of Rollout objects."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rollout.api.durations import format_duration
from rollout.api.policy import RolloutPolicySpec
from rollout.api.rollout import MetricResult, Rollout
from rollout.engine.units import in_unit, unit_of


def metric_text(result: MetricResult, policy: RolloutPolicySpec) -> str:
    """A metric in the units `rollout status` uses (rollout.engine.messages): error rates in %, latencies
    in ms."""
    unit = unit_of(policy, result.name)
    text = f"{result.name} {in_unit(result.value, unit)} vs stable {in_unit(result.stable_value, unit)}"
    if result.threshold_max is not None:
        text += f" (max {in_unit(result.threshold_max, unit)})"
    if result.p_value is not None and result.p_value < 1:
        text += f" p={result.p_value:.2g}"
    return f"{text} {result.verdict.value}"


def signature(rollout: Rollout) -> tuple[object, ...]:
    """What must change for the demo to print a new line."""
    s = rollout.status
    return (s.phase, s.current_step, s.canary_weight, s.traffic_applied, s.last_analysis_at)


def progress_line(rollout: Rollout, elapsed: float) -> str:
    s = rollout.status
    policy = rollout.spec.policy.spec
    step = f"step {min(s.current_step + 1, s.step_count)}/{s.step_count}" if s.step_count else ""
    weight = f"canary {s.canary_weight:3d}%" + ("" if s.traffic_applied else "*")
    metrics = "; ".join(metric_text(r, policy) for r in s.analysis)
    head = f"{format_duration(int(elapsed)):>6}  {rollout.spec.candidate_revision:<12} {s.phase.value:<11} {step:<9} {weight}"
    return f"{head}  {metrics}".rstrip()


@dataclass(frozen=True)
class Outcome:
    label: str
    rollout: Rollout
    seconds: float


def summary(outcomes: Sequence[Outcome], metrics_path: str) -> str:
    lines = ["", "Summary", "-------"]
    for o in outcomes:
        s = o.rollout.status
        lines.append(
            f"{o.label:<28} {o.rollout.spec.candidate_revision:<12} {s.phase.value:<11} "
            f"after {format_duration(int(o.seconds))}  ({s.reason})"
        )
        why = s.outcome or s.message
        if why:  # whole, wrapped: the outcome is one sentence with its numbers
            lines.append(
                textwrap.fill(
                    why,
                    width=110,
                    initial_indent=" " * 29,
                    subsequent_indent=" " * 29,
                    break_on_hyphens=False,
                )
            )
    lines += [
        "",
        f"Metrics came from {metrics_path}.",
        "Every decision above is in the Rollout status with its numbers. To try it by hand: "
        "`./scripts/rollout sandbox --controller --prometheus` (it prints the next commands to type).",
    ]
    return "\n".join(lines) + "\n"
