"""`rollout status` as text: pure formatting of a Rollout, its history and recent Events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rollout.api.durations import format_duration
from rollout.api.rollout import MetricResult, Rollout
from rollout.engine.headline import headline
from rollout.engine.units import in_unit, unit_of

__all__ = ["age", "analysis_rows", "headline", "render_status", "table"]


def metric_unit(rollout: Rollout, name: str) -> str:
    return unit_of(rollout.spec.policy.spec, name)


def age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "-"
    return format_duration(max(int((now - then).total_seconds()), 0))


def _bounds(r: MetricResult, pct: str) -> str:
    parts = []
    if r.threshold_min is not None:
        parts.append(f">= {in_unit(r.threshold_min, pct)}")
    if r.threshold_max is not None:
        parts.append(f"<= {in_unit(r.threshold_max, pct)}")
    return ", ".join(parts) or "-"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def analysis_rows(rollout: Rollout) -> list[list[str]]:
    rows = [
        [
            "METRIC",
            "VERDICT",
            "CANARY",
            "STABLE",
            "THRESHOLD",
            "REQUESTS c/s",
            "FAILED",
            "P-VALUE",
            "RATIO <=",
        ]
    ]
    for r in rollout.status.analysis:
        pct = metric_unit(rollout, r.name)
        rows.append(
            [
                r.name + (" (dry-run)" if r.dry_run else ""),
                r.verdict.value,
                in_unit(r.value, pct),
                in_unit(r.stable_value, pct),
                _bounds(r, pct),
                f"{r.canary_requests if r.canary_requests is not None else '-'}/"
                f"{r.stable_requests if r.stable_requests is not None else '-'}",
                f"{r.consecutive_failures}/{r.total_failures}",
                in_unit(r.p_value),
                in_unit(r.ratio_upper),
            ]
        )
    return rows


def _summary(rollout: Rollout, now: datetime) -> list[str]:
    """Where the rollout is: revisions, phase, step, weights, times, message and any pre-warm hold."""
    spec, status = rollout.spec, rollout.status
    lines = [
        headline(rollout),
        "",
        f"Rollout:    {rollout.metadata.namespace}/{rollout.metadata.name} (attempt {spec.attempt})",
        f"Target:     {spec.target.kind} {spec.target.name}",
        f"Revisions:  stable {spec.stable_revision} -> candidate {spec.candidate_revision}",
        f"Policy:     {spec.policy.name} ({spec.policy.hash[:12]})",
        f"Phase:      {status.phase.value}" + (f" ({status.reason})" if status.reason else ""),
    ]
    if status.step_count:
        lines.append(f"Step:       {min(status.current_step + 1, status.step_count)}/{status.step_count}")
    lines.append(
        f"Weights:    stable {status.stable_weight}%  canary {status.canary_weight}%"
        + ("" if status.traffic_applied else "  (not yet served by Knative)")
    )
    lines.append(
        f"Started:    {age(status.started_at, now)} ago"
        + (f", finished {age(status.finished_at, now)} ago" if status.finished_at else "")
    )
    if status.message:
        lines.append(f"Message:    {status.message}")
    if status.prewarm_pods is not None:
        lines.append(
            f"Pre-warm:   candidate held at min-scale {status.prewarm_pods} for its next share "
            f"(strategy.prewarm; stable ran {status.stable_pods_before} pods at the start; restored at the end)"
        )
    return lines


def render_status(rollout: Rollout, history: Sequence[Rollout], events: Sequence[Any], now: datetime) -> str:
    status = rollout.status
    lines = _summary(rollout, now)
    if status.analysis:
        lines += [
            "",
            f"Analysis (last at {age(status.last_analysis_at, now)} ago):",
            *table(analysis_rows(rollout)),
        ]
        if status.excluded_windows:
            lines.append(
                f"  {status.excluded_windows} window(s) left out: the candidate's new pods were starting"
            )
    if status.conditions:
        rows = [["CONDITION", "STATUS", "REASON", "SINCE"]]
        rows += [[c.type, c.status, c.reason, age(c.last_transition_time, now)] for c in status.conditions]
        lines += ["", *table(rows)]
    if status.requests:
        rows = [["REQUEST", "BY", "OUTCOME", "HANDLED", "REASON"]]
        rows += [
            [
                r.action.value,
                r.requested_by or "-",
                r.outcome,
                f"{age(r.handled_at, now)} ago",
                r.reason or "-",
            ]
            for r in status.requests
        ]
        lines += ["", *table(rows)]
    lines += _notifications(rollout)
    others = [r for r in history if r.metadata.name != rollout.metadata.name]
    if others:
        rows = [["HISTORY", "CANDIDATE", "PHASE", "REASON", "FINISHED"]]
        rows += [
            [
                r.metadata.name,
                r.spec.candidate_revision,
                r.status.phase.value,
                r.status.reason,
                age(r.status.finished_at, now),
            ]
            for r in reversed(others)
        ]
        lines += ["", *table(rows)]
    if events:
        lines += ["", "Events:"]
        # a rollout's end is recorded on the Rollout and on its target: one line is enough
        seen: set[tuple[str, str]] = set()
        unique = []
        for e in reversed(events):
            key = (e.reason or "", e.message or "")
            if key not in seen:
                seen.add(key)
                unique.append(e)
        for e in reversed(unique):
            count = f" (x{e.count})" if getattr(e, "count", None) and e.count > 1 else ""
            lines.append(f"  {e.type or '':8} {e.reason or '':24} {e.message or ''}{count}")
    return "\n".join(lines) + "\n"


def _notifications(rollout: Rollout) -> list[str]:
    """One line on the notifications: how many went out, what still waits, the last one given up on."""
    ledger = rollout.status.notifications
    if ledger is None:
        return []
    waiting = sorted({p.event.value for p in ledger.pending})
    line = f"Notifications: {ledger.delivered} delivered, {ledger.failed} given up"
    if waiting:
        line += f", waiting: {', '.join(waiting)}"
    if ledger.last_failure:
        line += f" (last given up: {ledger.last_failure})"
    return ["", line]
