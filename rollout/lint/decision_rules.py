"""Lint rules on what a policy decides by itself: `onInconclusive` of the decisive step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout.api.policy import Analysis
from rollout.api.strategy import InconclusiveAction, Strategy
from rollout.lint.findings import Issue, Path, warning
from rollout.lint.manifests import get


def _decides_alone(strategy: Strategy) -> bool:
    """Some step's end promotes without a person (otherwise a gate holds the decision)."""
    if strategy.canary is not None:
        return strategy.canary.ladder()[-1].pause is None
    if strategy.blue_green is not None:
        return not strategy.blue_green.manual_promotion
    return strategy.ab_test is not None and strategy.ab_test.promote_on_success


def inconclusive_issues(strategy: Strategy, analysis: Analysis, raw: Mapping[str, Any]) -> list[Issue]:
    kind = strategy.kind
    path: Path = ("spec", "strategy", kind, "onInconclusive")
    if get(raw, *path) is None:
        return []
    issues: list[Issue] = []
    if not _decides_alone(strategy):
        issues.append(
            warning(
                "policy/inconclusive-unused",
                path,
                "onInconclusive has no effect: a person decides at the last gate, whatever the evidence",
                "remove onInconclusive, or let the strategy promote by itself (e.g. promoteOnSuccess: true)",
            )
        )
    elif not any(m.compare is not None and not m.dry_run for m in analysis.metrics):
        issues.append(
            warning(
                "policy/inconclusive-unused",
                path,
                "onInconclusive has no effect: only comparisons can be inconclusive, and no deciding metric "
                "compares the candidate with stable",
                "remove onInconclusive, or add `compare` to a metric",
            )
        )
    ab = strategy.ab_test
    if ab is not None and ab.promote_on_success and ab.on_inconclusive == InconclusiveAction.PROMOTE:
        issues.append(
            warning(
                "policy/experiment-promotes-inconclusive",
                path,
                "the experiment promotes the treatment without evidence that it is no worse",
                "use onInconclusive: hold (a person decides) or rollback",
            )
        )
    return issues
